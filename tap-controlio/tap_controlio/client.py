"""The Controlio base stream: auth, transport, retries, envelope, errors,
the two paginators and how a row becomes a record."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import typing as t
from functools import cached_property
from urllib.parse import urlparse

import requests
import singer_sdk.singerlib as singer
from singer_sdk import RESTStream
from singer_sdk.authenticators import BearerTokenAuthenticator
from singer_sdk.exceptions import FatalAPIError, RetriableAPIError
from singer_sdk.helpers._util import utc_now
from singer_sdk.helpers.conform import TypeConformanceLevel
from singer_sdk.mapper import SameRecordTransform
from singer_sdk.pagination import BaseAPIPaginator
from singer_sdk.pagination import OffsetPaginator as SDKOffsetPaginator

MAX_PAGE_SIZE = 10000
DEFAULT_START_DAYS_AGO = 30
MAX_RETRY_AFTER = 600.0
PAGE_CURSOR = "prev"  # state key of a cursor report's last page cursor within its window
EXTRA = "extra"  # the declared object column holding every undeclared field
ROW_KEY = "row_key"  # the digest key of rows without a guaranteed natural key (row_digest)
UTC = dt.timezone.utc


class ControlioAPIError(FatalAPIError):
    """The API answered something the tap cannot use."""


def rows_of(response: requests.Response) -> list[dict]:
    """The rows of the documented envelope ``{"data": [...]}``, parsed once.

    A body that is not JSON, or not that envelope, is an error: a page the tap
    cannot read is never skipped silently.
    """
    cached = getattr(response, "_controlio_rows", None)
    if cached is not None:
        return cached
    path = urlparse(response.url).path
    try:
        payload = json.loads(response.content)
    except ValueError as exc:
        snippet = response.content[:200].decode("utf-8", "replace")
        raise ControlioAPIError(
            f"Controlio answered {path} with a body that is not JSON ({exc}): {snippet!r}"
        ) from exc
    rows = payload.get("data") if isinstance(payload, dict) else None
    if not isinstance(rows, list) or not all(isinstance(row, dict) for row in rows):
        raise ControlioAPIError(
            f"Controlio answered {path} without the documented {{\"data\": [...]}} list "
            f"of objects: {str(payload)[:200]!r}"
        )
    response._controlio_rows = rows  # type: ignore[attr-defined]
    return rows


#: fields that grow while an event is open or as an aggregate's day goes on
#: (end times, durations, totals, counts): left out of a row's digest, so
#: that a row read again, longer or larger, keeps its key
GROWING_FIELDS = frozenset({"end_time", "duration", "idle", "active", "total", "count", "percent"})
GROWING_SUFFIXES = ("_time", "_duration", "_seconds", "_count", "_percent", "_total")


def grows(field: str) -> bool:
    return field in GROWING_FIELDS or (field.endswith(GROWING_SUFFIXES) and field != "start_time")


def row_digest(row: dict, context: dict | None = None) -> str:
    """A deterministic key for a row that has no guaranteed natural key: the
    BLAKE2b digest (keys sorted) of the row as the API sent it, less the
    fields that grow (``grows``), with the parent's ids of a child stream. The
    same row read again, in any window, gets the same key, even once its event
    has ended or its totals have grown."""
    content = {key: value for key, value in row.items() if not grows(key)}
    if context:
        content = {**context, **content}
    encoded = json.dumps(content, sort_keys=True, separators=(",", ":"), default=str).encode()
    return hashlib.blake2b(encoded, digest_size=16).hexdigest()


def utc_iso(value: t.Any) -> t.Any:
    """A date-time as ISO 8601 in UTC (naive values are taken as UTC).

    Returns None for a value that is not a date-time, so that a declared
    date-time column never receives garbage (the caller keeps the raw value).
    """
    if not isinstance(value, str) or not value:
        return None
    if value.endswith("Z") or value.endswith("+00:00"):
        return value
    try:
        parsed = dt.datetime.fromisoformat(value.replace(" ", "T", 1))
    except ValueError:
        return None
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=UTC).isoformat()
    return parsed.astimezone(UTC).isoformat()


def query_value(value: t.Any) -> t.Any:
    """A setting's value as the document writes the parameter: a list as
    comma-separated values, a boolean as ``true``/``false``."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return ",".join(str(v) for v in value)
    return value


def start_day(config: t.Mapping[str, t.Any], today: dt.date) -> dt.date:
    """The ``start_date`` setting's day; default 30 days before today (UTC)."""
    if config.get("start_date"):
        return dt.date.fromisoformat(str(config["start_date"])[:10])
    return today - dt.timedelta(days=DEFAULT_START_DAYS_AGO)


class OffsetPaginator(SDKOffsetPaginator):
    """``limit``/``offset``: the last page is the one with fewer than ``limit`` rows."""

    def has_more(self, response: requests.Response) -> bool:
        return len(rows_of(response)) >= self._page_size


class PrevCursorPaginator(BaseAPIPaginator[t.Optional[str]]):
    """The raw reports' cursor: ``prev=<start_time>,<user_id>,<computer_id>`` of
    the last row received; the last chunk is the one with fewer than ``limit`` rows."""

    def __init__(self, page_size: int, start_value: str | None = None) -> None:
        super().__init__(start_value)
        self.page_size = page_size

    def has_more(self, response: requests.Response) -> bool:
        return len(rows_of(response)) >= self.page_size

    def get_next(self, response: requests.Response) -> str | None:
        rows = rows_of(response)
        if not rows:
            return None
        last = rows[-1]
        missing = [k for k in ("start_time", "user_id", "computer_id") if last.get(k) is None]
        if missing:
            raise ControlioAPIError(
                f"Controlio answered {urlparse(response.url).path} with a row lacking "
                f"{', '.join(missing)}: the next chunk cannot be requested"
            )
        return f"{last['start_time']},{last['user_id']},{last['computer_id']}"


class ControlioStream(RESTStream):
    """Shared behaviour of every Controlio endpoint."""

    records_jsonpath = "$.data[*]"
    #: the default path (API-CONTRACT.md), overridable through the ``paths`` setting
    default_path: str = ""
    #: date-time fields converted to UTC ISO 8601
    datetime_fields: tuple[str, ...] = ("inserted_at", "updated_at")
    #: records are built from declared fields only (see ``post_process``), so
    #: the SDK's per-record type conformance has nothing left to do
    TYPE_CONFORMANCE_LEVEL = TypeConformanceLevel.NONE

    @property
    def url_base(self) -> str:
        return self.config["api_url"].rstrip("/")

    @property
    def path(self) -> str:  # type: ignore[override]
        return (self.config.get("paths") or {}).get(self.name, self.default_path)

    @cached_property
    def authenticator(self) -> BearerTokenAuthenticator:
        return BearerTokenAuthenticator(token=self.config["api_token"])

    @property
    def requests_session(self) -> requests.Session:
        session = super().requests_session
        session.verify = self.config.get("ca_bundle") or self.config.get("verify_ssl", True)
        return session

    @property
    def timeout(self) -> float:  # type: ignore[override]
        return float(self.config.get("request_timeout", 300))

    @property
    def page_size(self) -> int:
        return int(self.config.get("page_size", MAX_PAGE_SIZE))

    # -------------------------------------------------------------- retries
    def backoff_max_tries(self) -> int:
        return int(self.config.get("max_retries", 5))

    def backoff_wait_generator(self) -> t.Generator[float, t.Any, None]:  # type: ignore[override]
        """Wait what Retry-After asks, else ``retry_backoff_seconds`` doubled each time."""
        base = float(self.config.get("retry_backoff_seconds", 2))
        attempt = 0
        exception = yield  # type: ignore[misc]
        while True:
            wait = _retry_after(exception)
            if wait is None:
                wait = base * 2**attempt
            attempt += 1
            exception = yield wait

    def backoff_jitter(self, value: float) -> float:
        return value  # Retry-After is the vendor's wish: wait exactly that

    def validate_response(self, response: requests.Response) -> None:
        status = response.status_code
        if status == 429 or status >= 500:
            raise RetriableAPIError(self.response_error_message(response), response)
        if 400 <= status < 500:
            raise ControlioAPIError(self.response_error_message(response))

    def response_error_message(self, response: requests.Response) -> str:
        """The API's ``{"error": ...}`` message and the endpoint path (never the
        query, the headers or the token)."""
        path = urlparse(response.url).path
        detail = response.text[:500].strip()
        try:
            body = response.json()
            if isinstance(body, dict) and body.get("error") is not None:
                detail = str(body["error"])
        except ValueError:
            pass
        hint = " (check the api_token setting)" if response.status_code in (401, 403) else ""
        return (
            f"Controlio {path} answered {response.status_code} {response.reason} "
            f"for stream {self.name}: {detail}{hint}"
        )

    # -------------------------------------------------------------- records
    def parse_response(self, response: requests.Response) -> t.Iterable[dict]:
        return rows_of(response)

    #: declared fields the tap computes; a field of the same name in a row is kept in ``extra``
    computed_fields: frozenset[str] = frozenset()

    @cached_property
    def _declared(self) -> frozenset[str]:
        """The declared fields taken from the row as the API sent it."""
        return frozenset(self.schema["properties"]) - {EXTRA} - self.computed_fields

    @cached_property
    def _key_fields(self) -> tuple[str, ...]:
        return tuple(self.primary_keys or ())

    def post_process(self, row: dict, context: dict | None = None) -> dict | None:
        """The record of ``row`` (``record_from_row``); a record without a value
        for every primary-key field is an error, never written."""
        record = self.record_from_row(row, context)
        for key in self._key_fields:
            if record.get(key) is None:
                self._missing_key(key, row)
        return record

    def _missing_key(self, key: str, row: dict) -> t.NoReturn:
        raise ControlioAPIError(
            f"Controlio answered {self.path} with a {self.name} row without its primary key field "
            f"{key!r} (the row has: {', '.join(sorted(row)) or 'no fields'}); "
            f"a record without its key would be merged with others in the target"
        )

    def record_from_row(self, row: dict, context: dict | None = None) -> dict:
        """A new record: declared fields at the top, every other field in ``extra``.

        The row itself is left untouched (the cursor paginator reads the last
        row's raw ``start_time``)."""
        declared = self._declared
        record = {k: v for k, v in row.items() if k in declared}
        extra = {k: v for k, v in row.items() if k not in declared} if len(record) < len(row) else {}
        for field in self.datetime_fields:
            value = record.get(field)
            if value is not None and not (value.__class__ is str and value[-1:] == "Z"):
                converted = utc_iso(value)
                if converted != value:
                    record[field] = converted
                    if converted is None:  # not a date-time: keep what the API sent
                        extra[field] = value
        record[EXTRA] = extra
        return record

    def generate_child_contexts(self, record: dict, context: dict | None) -> t.Iterable[dict | None]:
        # singer-sdk would copy every record as a child context, with no child stream to hand it to
        if self.child_streams:
            yield from super().generate_child_contexts(record, context)

    _plain_records: bool | None = None

    def _generate_record_messages(self, record: dict) -> t.Iterator[singer.RecordMessage]:
        """The SDK's record message, without its per-record walks when they are
        no-ops: every property selected, no stream map or flattening, and
        records built from declared properties only (``post_process``).
        Measured in tests/bench/bench_controlio.py."""
        if self._plain_records is None:
            maps = self.stream_maps
            self._plain_records = (
                all(self.mask.values())
                and len(maps) == 1
                and type(maps[0]) is SameRecordTransform
                and maps[0].stream_alias == self.name
                and not maps[0].flattening_enabled
            )
        if not self._plain_records:
            yield from super()._generate_record_messages(record)
            return
        yield singer.RecordMessage(
            stream=self.name, record=record, version=self._stream_version, time_extracted=utc_now()
        )


def _retry_after(exception: BaseException | None) -> float | None:
    response = getattr(exception, "response", None)
    if response is None:
        return None
    header = response.headers.get("Retry-After")
    if not header:
        return None
    try:
        return min(max(float(header), 0.0), MAX_RETRY_AFTER)
    except ValueError:
        try:
            when = dt.datetime.strptime(header, "%a, %d %b %Y %H:%M:%S GMT").replace(tzinfo=UTC)
        except ValueError:
            return None
        return min(max((when - dt.datetime.now(UTC)).total_seconds(), 0.0), MAX_RETRY_AFTER)


class Window(t.NamedTuple):
    """Days ``start`` to ``end``, both inclusive (the API's date filters)."""

    start: dt.date
    end: dt.date


class WindowedStream(ControlioStream):
    """A date-filtered endpoint read in windows of ``window_days`` days, from the
    bookmark to today (or ``end_date``).

    The bookmark (``window_start``) is the first day of the window being read:
    it is written before each window, so an interrupted sync resumes at the
    window it was in and never re-reads windows it finished. A new sync starts
    at the bookmark or ``lookback_days`` before today, whichever is earlier,
    since the last days' data keeps changing.
    """

    replication_key = "window_start"
    computed_fields = frozenset({"window_start", "window_end"})
    is_sorted = True  # windows are read in date order
    check_sorted = False  # the lookback re-reads days before the saved bookmark
    #: one ``start_time`` day per request, no ``end_time`` (timeline reports)
    one_day_per_request = False
    _window: Window | None = None
    _window_fields: dict[str, str] | None = None
    #: the page cursor an interrupted sync saved for the current window, if any
    resume_cursor: str | None = None

    def windows(self, context: dict | None) -> list[Window]:
        today = dt.datetime.now(UTC).date()
        last = today
        if self.config.get("end_date"):
            last = min(last, dt.date.fromisoformat(str(self.config["end_date"])[:10]))
        first = start_day(self.config, today)
        state = self.get_context_state(context)
        bookmark = state.get("replication_key_value")
        if bookmark and state.get("replication_key") == self.replication_key:
            lookback = dt.timedelta(days=int(self.config.get("lookback_days", 1)))
            resume = min(dt.date.fromisoformat(str(bookmark)[:10]), today - lookback)
            first = max(first, resume)
        size = 1 if self.one_day_per_request else int(self.config.get("window_days", 1))
        windows = []
        day = first
        while day <= last:
            end = min(day + dt.timedelta(days=size - 1), last)
            windows.append(Window(day, end))
            day = end + dt.timedelta(days=1)
        return windows

    def get_records(self, context: dict | None) -> t.Iterable[dict]:
        state = self.get_context_state(context)
        # a page cursor saved by an interrupted sync, for the window it was in
        saved_window, saved_cursor = state.get("replication_key_value"), state.get(PAGE_CURSOR)
        for index, window in enumerate(self.windows(context)):
            resume = saved_cursor if index == 0 and saved_window == window.start.isoformat() else None
            self._begin_window(context, window, resume)
            yield from super().get_records(context)
        self._window = self._window_fields = None
        if state.pop(PAGE_CURSOR, None) is not None:  # the last window is finished too
            self.state_manager.is_flushed = False

    def _increment_stream_state(self, latest_record: dict, *, context: dict | None = None) -> None:
        """Rows do not move the bookmark: it is the window being read, written
        when the window begins (``_begin_window``), with the value every row of
        that window carries in ``window_start``."""

    def _begin_window(self, context: dict | None, window: Window, resume_cursor: str | None = None) -> None:
        """Everything before ``window`` is read: say so in the state, now."""
        self._window = window
        self._window_fields = {"window_start": window.start.isoformat(), "window_end": window.end.isoformat()}
        self.resume_cursor = resume_cursor
        state = self.get_context_state(context)
        state["replication_key"] = self.replication_key
        state["replication_key_value"] = window.start.isoformat()
        if resume_cursor:
            state[PAGE_CURSOR] = resume_cursor
        else:
            state.pop(PAGE_CURSOR, None)
        self.state_manager.is_flushed = False
        self._write_state_message()

    def save_page_cursor(self, context: dict | None, cursor: str) -> None:
        """The pages of this window up to ``cursor`` are written: a sync
        interrupted now resumes at ``cursor`` rather than at the window's start."""
        state = self.get_context_state(context)
        if state.get(PAGE_CURSOR) != cursor:
            state[PAGE_CURSOR] = cursor
            self.state_manager.is_flushed = False
            self._write_state_message()

    def window_params(self) -> dict[str, str]:
        window = self._window
        assert window is not None, "window_params outside a window"
        if self.one_day_per_request:
            return {"start_time": window.start.isoformat()}
        return {"start_time": window.start.isoformat(), "end_time": window.end.isoformat()}

    def record_from_row(self, row: dict, context: dict | None = None) -> dict:
        record = super().record_from_row(row, context)
        if self._window_fields is not None:
            record.update(self._window_fields)
        return record
