"""The Controlio base stream: auth, transport, retries, envelope, errors,
the two paginators and how a row becomes a record."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import typing as t
from functools import cached_property
from types import MappingProxyType
from urllib.parse import urlparse

import msgspec
import requests
from singer_sdk import RESTStream
from singer_sdk.authenticators import BearerTokenAuthenticator
from singer_sdk.exceptions import FatalAPIError
from singer_sdk.helpers.conform import TypeConformanceLevel
from singer_sdk.helpers.types import Context
from singer_sdk.pagination import BaseAPIPaginator
from singer_sdk.pagination import OffsetPaginator as SDKOffsetPaginator
from singer_sdk.streams.rest import HTTPRequest, PageContext
from typing_extensions import override

from tap_controlio import period
from tap_controlio._sdk import FastRecordMessages, RecordBookmarks, write_state
from tap_controlio.streamrules import StreamRules

MAX_PAGE_SIZE = 10000
PAGE_CURSOR = "prev"  # state key of a cursor report's last page cursor within its window
EXTRA = "extra"  # the declared object column holding every undeclared field
ROW_KEY = "row_key"  # the digest key of rows without a guaranteed natural key (row_digest)
UTC = dt.timezone.utc


class ControlioAPIError(FatalAPIError):
    """The API answered something the tap cannot use."""


class Page(t.NamedTuple):
    """What the paginators need of a page: its number of rows and its last row."""

    size: int
    last: dict | None


def rows_of(response: requests.Response) -> list[dict]:
    """The rows of the documented envelope ``{"data": [...]}``.

    A body that is not JSON, or not that envelope, is an error: a page the tap
    cannot read is never skipped silently. The response keeps only its
    ``Page`` (``page_of``), neither the rows nor the body: the rows are freed
    once read, before the next page (of this window or the next) is requested.
    """
    path = urlparse(response.url).path
    try:
        # msgspec (a dependency of singer-sdk[msgspec]) parses a report page in a third of json.loads's
        # time (1.2 against 3.4 microseconds per detailedActivities row)
        payload = msgspec.json.decode(response.content)
    except ValueError as exc:  # msgspec.DecodeError is a ValueError
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
    response._controlio_page = Page(len(rows), rows[-1] if rows else None)  # type: ignore[attr-defined]
    # singer-sdk holds the response until the next one arrives: its body, parsed, goes now (a window's page
    # and the next window's first page are never both in memory; 1.5 MB of peak RSS in tests/bench)
    response._content = b""
    return rows


def page_of(response: requests.Response) -> Page:
    """The row count and last row of a page, parsed once (``rows_of``)."""
    page = getattr(response, "_controlio_page", None)
    if page is None:
        rows_of(response)
        page = response._controlio_page  # type: ignore[attr-defined]
    return page


#: fields that grow while an event is open or as an aggregate's day goes on
#: (end times, durations, totals, counts): left out of a row's digest, so
#: that a row read again, longer or larger, keeps its key
GROWING_FIELDS = frozenset({"end_time", "duration", "idle", "active", "total", "count", "percent"})
GROWING_SUFFIXES = ("_time", "_duration", "_seconds", "_count", "_percent", "_total")


def grows(field: str) -> bool:
    return field in GROWING_FIELDS or (field.endswith(GROWING_SUFFIXES) and field != "start_time")


def row_digest(row: dict, context: t.Mapping[str, t.Any] | None = None) -> str:
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
    if value.endswith(("Z", "+00:00")):
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



# ---------------------------------------------------------------- config days
# start_date/end_date are read by ``period`` (the same in every tap); Controlio's
# schema pattern also allows a lowercase ``z``, which it reads as UTC.
def first_day(config: t.Mapping[str, t.Any], now: dt.datetime) -> dt.date:
    """The first day a first sync reads: the UTC day of ``start_date``; default
    30 days before ``now``'s day."""
    return period.start_instant(config, now, lowercase_z=True).date()


def last_day(config: t.Mapping[str, t.Any], now: dt.datetime) -> dt.date:
    """The last day read: ``now``'s UTC day, or the last day that starts before
    ``end_date`` (the API's report dates are whole UTC days)."""
    today = now.astimezone(UTC).date()
    end = period.end_instant(config, lowercase_z=True)
    if end is None:
        return today
    return min(today, (end - dt.timedelta(microseconds=1)).date())


class Window(t.NamedTuple):
    """Days ``start`` to ``end``, both inclusive (the API's date filters)."""

    start: dt.date
    end: dt.date


def plan_windows(config: t.Mapping[str, t.Any], bookmark: str | None, now: dt.datetime,
                 days_per_window: int) -> list[Window]:
    """The windows a sync reads, in date order: from ``lookback_days`` before
    the bookmark (a day), never before ``start_date``'s day, or from that day
    without a bookmark, to the last day (``last_day``)."""
    first = first_day(config, now)
    if bookmark:
        resume = dt.date.fromisoformat(str(bookmark)[:10]) - dt.timedelta(days=config["lookback_days"])
        first = max(first, resume)
    last = last_day(config, now)
    windows = []
    day = first
    while day <= last:
        end = min(day + dt.timedelta(days=days_per_window - 1), last)
        windows.append(Window(day, end))
        day = end + dt.timedelta(days=1)
    return windows


def window_params(window: Window, *, one_day: bool = False) -> dict[str, str]:
    """The report date filters of ``window``: ``start_time``/``end_time``, both
    days inclusive, or ``start_time`` alone for a one-day report."""
    if one_day:
        return {"start_time": window.start.isoformat()}
    return {"start_time": window.start.isoformat(), "end_time": window.end.isoformat()}


# ---------------------------------------------------------------- paginators
class OffsetPaginator(SDKOffsetPaginator):
    """``limit``/``offset``: the last page is the one with fewer than ``limit`` rows."""

    def __init__(self, start_value: int, page_size: int) -> None:
        super().__init__(start_value, page_size)
        self.limit = page_size

    @override
    def has_more(self, response: requests.Response) -> bool:
        return page_of(response).size >= self.limit


class PrevCursorPaginator(BaseAPIPaginator[str | None]):
    """The raw reports' cursor: ``prev=<start_time>,<user_id>,<computer_id>`` of
    the last row received; the last chunk is the one with fewer than ``limit`` rows."""

    def __init__(self, page_size: int, start_value: str | None = None) -> None:
        super().__init__(start_value)
        self.page_size = page_size

    @override
    def has_more(self, response: requests.Response) -> bool:
        return page_of(response).size >= self.page_size

    @override
    def get_next(self, response: requests.Response) -> str | None:
        last = page_of(response).last
        if last is None:
            return None
        missing = [k for k in ("start_time", "user_id", "computer_id") if last.get(k) is None]
        if missing:
            raise ControlioAPIError(
                f"Controlio answered {urlparse(response.url).path} with a row lacking "
                f"{', '.join(missing)}: the next chunk cannot be requested"
            )
        return f"{last['start_time']},{last['user_id']},{last['computer_id']}"


class WindowPage(t.NamedTuple):
    """A windowed stream's pagination token: the window and the page inside it
    (an offset, a ``prev`` cursor, or None for a first chunk or a one-page
    report). ``window`` is None for a report read whole, without dates."""

    window: Window | None
    page: t.Any


class WindowPaginator(BaseAPIPaginator[WindowPage | None]):
    """The windows, in order, each read through its own page paginator (from
    ``new_pages(start)``): the tokens are every page of the first window, then
    of the next one. An empty page ends its window, never the stream."""

    def __init__(self, windows: t.Sequence[Window | None],
                 new_pages: t.Callable[[t.Any], BaseAPIPaginator], resume_page: t.Any = None) -> None:
        self.windows = list(windows)
        self.window_index = 0
        self.new_pages = new_pages
        self.pages = new_pages(resume_page)
        super().__init__(WindowPage(self.windows[0], self.pages.current_value) if self.windows else None)

    @property
    @override
    def finished(self) -> bool:
        return not self.windows or super().finished

    @override
    def has_more(self, response: requests.Response) -> bool:
        return True  # ``get_next`` answers None after the last window's last page

    @override
    def get_next(self, response: requests.Response) -> WindowPage | None:
        self.pages.advance(response)
        if self.pages.finished:
            self.window_index += 1
            if self.window_index == len(self.windows):
                return None
            self.pages = self.new_pages(None)
        return WindowPage(self.windows[self.window_index], self.pages.current_value)

    @override
    def continue_if_empty(self, response: requests.Response) -> bool:
        return True  # an empty page is a window's last page; the next window may have rows


# ---------------------------------------------------------------- streams
class ControlioStream(StreamRules, FastRecordMessages, RESTStream):
    """Shared behaviour of every Controlio endpoint (BATCH, retry waits, TLS, timeout, api_url: ``StreamRules``)."""

    records_jsonpath = "$.data[*]"
    #: the default path (API-CONTRACT.md), overridable through the ``paths`` setting
    default_path: str = ""
    #: date-time fields converted to UTC ISO 8601
    datetime_fields: tuple[str, ...] = ("inserted_at", "updated_at")
    #: records are built from declared fields only (see ``post_process``), so
    #: the SDK's per-record type conformance has nothing left to do
    TYPE_CONFORMANCE_LEVEL = TypeConformanceLevel.NONE

    # path stays per tap (StreamRules has none): the taps read ``paths`` differently;
    # here an entry (the schema makes it start with /) replaces default_path
    @property
    @override
    def path(self) -> str:  # type: ignore[override]  # singer-sdk declares a plain attribute
        return (self.config.get("paths") or {}).get(self.name, self.default_path)

    @cached_property
    @override
    def authenticator(self) -> BearerTokenAuthenticator:
        return BearerTokenAuthenticator(token=self.config["api_token"])

    @property
    def page_size(self) -> int:
        return int(self.config["page_size"])

    # -------------------------------------------------------------- errors
    # singer-sdk classifies responses (``validate_response``: 429 and 5xx are
    # retried, StreamRules says how long between attempts; every other 4xx is fatal).
    @override
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
    @override
    def parse_response(self, response: requests.Response) -> t.Iterable[dict]:
        return rows_of(response)

    #: declared fields the tap computes; a field of the same name in a row is kept in ``extra``
    computed_fields: frozenset[str] = frozenset()

    @cached_property
    def declared_fields(self) -> frozenset[str]:
        """The declared fields taken from the row as the API sent it."""
        return frozenset(self.schema["properties"]) - {EXTRA} - self.computed_fields

    @cached_property
    def key_fields(self) -> tuple[str, ...]:
        return tuple(self.primary_keys or ())

    @override
    def post_process(self, row: dict, context: Context | None = None) -> dict | None:
        """The record of ``row`` (``record_from_row``); a record without a value
        for every primary-key field is an error, never written."""
        record = self.record_from_row(row, context)
        for key in self.key_fields:
            if record.get(key) is None:
                self.missing_key(key, row)
        return record

    def missing_key(self, key: str, row: dict) -> t.NoReturn:
        raise ControlioAPIError(
            f"Controlio answered {self.path} with a {self.name} row without its primary key field "
            f"{key!r} (the row has: {', '.join(sorted(row)) or 'no fields'}); "
            f"a record without its key would be merged with others in the target"
        )

    def record_from_row(self, row: dict, context: Context | None = None) -> dict:
        """A new record: declared fields at the top, every other field in ``extra``.

        The row itself is left untouched (the cursor paginator reads the last
        row's raw ``start_time``)."""
        record = dict(row)
        undeclared = row.keys() - self.declared_fields
        extra = {k: record.pop(k) for k in row if k in undeclared} if undeclared else {}
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

    @override
    def generate_child_contexts(self, record: dict, context: Context | None) -> t.Iterable[Context | None]:
        # singer-sdk would copy every record as a child context, with no child stream to hand it to
        if self.child_streams:
            yield from super().generate_child_contexts(record, context)


class WindowedStream(RecordBookmarks, ControlioStream):
    """A date-filtered endpoint read in windows of ``window_days`` days, from the
    bookmark to today (or ``end_date``); the window is the paginator's token
    (``WindowPaginator``), so ``get_url_params`` depends only on the token.

    The bookmark (``window_start``) is the first day of the window being read:
    it is saved before each window's first request (``get_http_request``), so
    an interrupted sync resumes at the window it was in and never re-reads
    windows it finished. A new sync starts ``lookback_days`` before the
    bookmark, since the last days' data keeps changing.
    """

    replication_key = "window_start"
    computed_fields = frozenset({"window_start", "window_end"})
    is_sorted = True  # windows are read in date order
    check_sorted = False  # the lookback re-reads days before the saved bookmark
    #: one ``start_time`` day per request, no ``end_time`` (timeline reports)
    one_day_per_request = False
    #: the page cursor of a window is saved in the state (cursor reports), not only the window
    resumes_inside_window = False
    #: the window whose rows are being read (``enter_window``, before each request) and its record fields
    current_window: Window | None = None
    window_fields: t.Mapping[str, str] = MappingProxyType({})

    def windows(self, context: Context | None, now: dt.datetime | None = None) -> list[Window | None]:
        """The windows a sync of ``context`` reads, from its state and the config, up to ``now``."""
        state = self.get_context_state(context)
        bookmark = state.get("replication_key_value") if state.get("replication_key") == self.replication_key \
            else None
        size = 1 if self.one_day_per_request else int(self.config["window_days"])
        return list(plan_windows(self.config, bookmark, now or dt.datetime.now(UTC), size))

    def page_paginator(self, start: t.Any) -> BaseAPIPaginator:
        """The paginator of the pages inside one window."""
        return OffsetPaginator(start_value=0, page_size=self.page_size)

    def window_paginator(self, context: Context | None, now: dt.datetime | None = None) -> WindowPaginator:
        """The paginator of a sync of ``context``: its windows, the first one
        resumed at the page cursor an interrupted sync saved for it."""
        windows = self.windows(context, now)
        state = self.get_context_state(context)
        resume = None
        if self.resumes_inside_window and windows and windows[0] is not None \
                and state.get("replication_key_value") == windows[0].start.isoformat():
            resume = state.get(PAGE_CURSOR)
        return WindowPaginator(windows, self.page_paginator, resume)

    @override
    def get_new_paginator(self) -> WindowPaginator:
        # ``self.context``: the context singer-sdk is syncing (set by ``Stream.sync``)
        return self.window_paginator(dict(self.context) if self.context else None)

    @override
    def get_http_request(self, *, page: PageContext) -> HTTPRequest:
        """Before each request: everything before its window (and its page
        cursor) is written, so the state says so now."""
        assert page.next_page_token is not None
        self.save_position(page.stream_context, page.next_page_token)
        return super().get_http_request(page=page)

    def save_position(self, context: Context | None, token: WindowPage) -> None:
        """The bookmark is ``token``'s window (with its page cursor, for a cursor
        report); a STATE message is written when it moves."""
        window, page = token
        if window != self.current_window:
            self.enter_window(window)
        if window is None or self.replication_key is None:
            return
        state = self.get_context_state(context)
        start = window.start.isoformat()
        cursor = page if self.resumes_inside_window and page else None
        if state.get("replication_key_value") == start and state.get(PAGE_CURSOR) == cursor:
            return
        state["replication_key"] = self.replication_key
        state["replication_key_value"] = start
        if cursor:
            state[PAGE_CURSOR] = cursor
        else:
            state.pop(PAGE_CURSOR, None)
        self.state_manager.is_flushed = False
        if not self.batching:  # in BATCH mode, singer-sdk writes the state after each batch is out
            write_state(self)

    # The bookmark is the window, saved before each request (``save_position``),
    # so a record would only set it to the value it already has: singer-sdk's
    # per-record step is skipped (_sdk.RecordBookmarks). It cost 2.6 us a record
    # for nothing (singer-sdk 0.54.9), about 15% of the CPU of
    # tests/bench/bench_controlio.py (33,100-35,100 records per CPU second with
    # it, 38,400-41,700 without; 37,000-37,600 before issue 16).
    @override
    def record_moves_bookmark(self, record: dict, context: Context | None) -> bool:
        """Rows do not move the bookmark: their window did, before they were requested."""
        return False

    def enter_window(self, window: Window | None) -> None:
        """The rows read from now on are ``window``'s."""
        self.current_window = window
        self.window_fields = {} if window is None else {
            "window_start": window.start.isoformat(), "window_end": window.end.isoformat()}

    @cached_property
    def batching(self) -> bool:
        return self.get_batch_config(self.config) is not None

    @override
    def get_records(self, context: Context | None) -> t.Iterable[dict]:
        yield from super().get_records(context)
        state = self.get_context_state(context)
        if state.pop(PAGE_CURSOR, None) is not None:  # the last window is finished too
            self.state_manager.is_flushed = False

    @override
    def get_url_params(self, context: Context | None, next_page_token: WindowPage | None) -> dict[str, t.Any]:
        assert next_page_token is not None, "a windowed stream's token is never None"
        window = next_page_token.window
        params: dict[str, t.Any] = {"sort_direction": "asc"}
        if window is not None:
            params.update(window_params(window, one_day=self.one_day_per_request))
        return params

    @override
    def record_from_row(self, row: dict, context: Context | None = None) -> dict:
        record = super().record_from_row(row, context)
        record.update(self.window_fields)
        return record
