"""The Fudo PAM API v2 base stream: auth, envelope, errors, retries, paging.

Everything the Fudo streams share lives here:

- auth: the raw token in the ``Authorization`` header (no scheme), as in
  the vendor's curl examples;
- answers: ``{"result": "success", "<model>": [...]}``; anything else (a
  ``result: error`` body, a 200 that is not that envelope, an HTML page from a
  proxy or a login portal) fails loudly, naming the endpoint;
- retries: singer-sdk's (429 and 5xx retried, other 4xx fatal; timeouts and
  dropped connections retried), ``max_retries`` attempts, waits of
  ``retry_backoff_seconds * 2**attempt`` or the Retry-After the appliance
  sends, none longer than ``MAX_RETRY_WAIT`` (``StreamRules``); a CSV body
  that breaks off is read again from the row it broke at;
- paging: ``limit``/``offset`` over ``filter=modified_at.ge(...)`` ordered
  by ``modified_at`` (see ``ModifiedSincePaginator``).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import re
import typing as t
from functools import cached_property
from urllib.parse import urlparse

import requests
from singer_sdk import RESTStream
from singer_sdk.authenticators import APIKeyAuthenticator
from singer_sdk.exceptions import FatalAPIError, InvalidStreamSortException
from singer_sdk.helpers.conform import TypeConformanceLevel
from singer_sdk.pagination import BaseAPIPaginator
from singer_sdk.singerlib.catalog import REPLICATION_INCREMENTAL, SelectionMask
from singer_sdk.streams.rest import HTTPRequest, PageContext
from typing_extensions import override

from tap_sessionreports import period
from tap_sessionreports._sdk import FastRecordMessages, RecordBookmarks
from tap_sessionreports.streamrules import StreamRules

if t.TYPE_CHECKING:
    from singer_sdk.helpers.types import Context

MAX_ERROR_TEXT = 300
#: The longest single wait between two attempts, in seconds (Retry-After included).
MAX_RETRY_WAIT = 300.0

#: Where the parsed list of a response is kept, so that the envelope is parsed
#: once and both ``parse_response`` and the paginator can read it.
_RECORDS_ATTR = "_sessionreports_records"
_TAIL_ATTR = "_sessionreports_tail"


# ----------------------------------------------------------------- time helpers
def parse_datetime(value: t.Any) -> dt.datetime | None:
    """An aware UTC datetime from an ISO 8601 string (naive means UTC)."""
    if value is None or value == "":
        return None
    if isinstance(value, dt.datetime):
        parsed = value
    else:
        text = str(value).strip()
        if text.endswith(("Z", "z")):
            text = text[:-1] + "+00:00"
        parsed = dt.datetime.fromisoformat(text)
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=dt.timezone.utc)
    return parsed.astimezone(dt.timezone.utc)


def iso_utc(value: dt.datetime) -> str:
    """The one format the tap emits: microseconds and +00:00, so strings sort."""
    return value.astimezone(dt.timezone.utc).isoformat(timespec="microseconds")


def filter_time(value: dt.datetime) -> str:
    """A time as the document's filters write it: ``2025-12-09T12:00:00Z``."""
    value = value.astimezone(dt.timezone.utc)
    spec = "microseconds" if value.microsecond else "seconds"
    return value.replace(tzinfo=None).isoformat(timespec=spec) + "Z"


# ----------------------------------------------------------------- envelope
def endpoint_of(response: requests.Response | None, fallback: str) -> str:
    """``GET /api/v2/report``: method and path, never the query or the host."""
    if response is None or response.request is None:
        return fallback
    method = response.request.method
    verb = method.decode() if isinstance(method, bytes) else str(method)
    return f"{verb} {urlparse(str(response.request.url)).path}"


def looks_like_html(response: requests.Response, head: bytes) -> bool:
    ctype = response.headers.get("Content-Type", "").lower()
    return "html" in ctype or head.lstrip()[:1] == b"<"


def html_title(text: str) -> str:
    match = re.search(r"<title[^>]*>(.*?)</title>", text, re.I | re.S)
    if match:
        return " ".join(match.group(1).split())[:MAX_ERROR_TEXT]
    return " ".join(re.sub(r"<[^>]+>", " ", text).split())[:MAX_ERROR_TEXT]


def error_text(response: requests.Response) -> str:
    """The vendor's own message from an error answer, short and safe."""
    body = response.content or b""
    try:
        payload = json.loads(body)
    except ValueError:
        if looks_like_html(response, body[:64]):
            title = html_title(body[:20000].decode("utf-8", "replace"))
            return f"an HTML page ({title!r}), not the API's JSON: a proxy or portal answered"
        return body[:MAX_ERROR_TEXT].decode("utf-8", "replace").strip() or "(empty body)"
    if isinstance(payload, dict):
        error = payload.get("error", payload.get("message"))
        if error is not None:
            if not isinstance(error, str):
                error = json.dumps(error)[:MAX_ERROR_TEXT]
            return error[:MAX_ERROR_TEXT]
    return json.dumps(payload)[:MAX_ERROR_TEXT]


def envelope_records(response: requests.Response, model: str) -> list[dict]:
    """The list under ``model`` in a success envelope, or a FatalAPIError."""
    cached = getattr(response, _RECORDS_ATTR, None)
    if cached is not None:
        return cached
    endpoint = endpoint_of(response, model)
    body = response.content
    try:
        payload = json.loads(body)
    except ValueError as exc:
        if looks_like_html(response, body[:64]):
            title = html_title(body[:20000].decode("utf-8", "replace"))
            msg = (f"{endpoint} answered {response.status_code} with an HTML page ({title!r}) "
                   "instead of the API's JSON; check api_url (a proxy or login portal answered)")
        else:
            msg = f"{endpoint} answered {response.status_code} with a body that is not JSON ({exc})"
        raise FatalAPIError(msg) from None
    if not isinstance(payload, dict):
        msg = f"{endpoint} answered JSON that is not the Fudo envelope (a {type(payload).__name__})"
        raise FatalAPIError(msg)
    if payload.get("result") == "error":
        msg = f"{endpoint} answered result=error: {error_text(response)}"
        raise FatalAPIError(msg)
    records = payload.get(model)
    if payload.get("result") != "success" or not isinstance(records, list):
        keys = ", ".join(sorted(map(str, payload))[:10])
        msg = (f"{endpoint} answered JSON that is not the expected envelope "
               f'{{"result": "success", "{model}": [...]}} (keys: {keys})')
        raise FatalAPIError(msg)
    if not all(isinstance(record, dict) for record in records):
        msg = f"{endpoint} answered a {model} list holding something other than objects"
        raise FatalAPIError(msg)
    setattr(response, _RECORDS_ATTR, records)
    setattr(response, _TAIL_ATTR, PageTail.of(records))
    return records


# ----------------------------------------------------------------- paginator
@dataclasses.dataclass(frozen=True)
class PageTail:
    """What paging needs from a page, taken before its records are processed
    (``modified_at`` and ``id`` exactly as the server wrote them)."""

    count: int
    first: tuple
    last_modified: t.Any
    ids: frozenset  # ids of the page's records (those that have one)
    tied_ids: frozenset  # ids of the records at the end of the page sharing last_modified

    @classmethod
    def of(cls, records: list[dict]) -> PageTail:
        if not records:
            return cls(0, (), None, frozenset(), frozenset())
        last = records[-1].get("modified_at")
        tied = []
        for record in reversed(records):
            if record.get("modified_at") != last:
                break
            tied.append(record.get("id"))
        ids = frozenset(record.get("id") for record in records) - {None}
        return cls(len(records), (records[0].get("id"), records[0].get("modified_at")), last, ids,
                   frozenset(tied) - {None})


class ModifiedSincePaginator(BaseAPIPaginator[tuple]):
    """``limit``/``offset`` pages of a list filtered by ``modified_at.ge(since)``
    and ordered by ``modified_at``.

    The value is ``(since, offset, group)``. After each page the filter
    restarts at the page's last ``modified_at`` with offset 0, and the records
    of that time already read (``seen``, by id) are skipped when they come
    again. A plain growing offset would skip a record for each one modified
    during the sync (it moves to the end and shifts the rest back), and forces
    the appliance through ever deeper offsets. Nor does the next page skip the
    tied records by count: the API orders by one field only, so records
    sharing a ``modified_at`` may come in a different order on every request.

    When a whole page shares one time (more records of that time than a page
    holds), that time is read on its own (``group``): filtered to exactly it
    (``ge`` and ``le``) and ordered by ``id``, which is unique, so its pages
    are stable; then paging goes on after it.
    With no ``since`` (a first full read, where records may lack a
    ``modified_at`` and sort last), it is plain offset paging.
    Pages end with an empty page, so a server that caps ``limit`` below the
    requested size is still read to the end.
    """

    def __init__(self, since: str | None, model: str) -> None:
        super().__init__((since, 0, False))
        self._model = model
        self._previous_first: tuple | None = None
        #: ids read at exactly ``since`` (the current value's), to skip if served again
        self.seen: frozenset = frozenset()
        #: the time whose group was read whole, and how many records it held
        self._group_done: tuple[t.Any, int] | None = None

    def _tail(self, response: requests.Response) -> PageTail:
        envelope_records(response, self._model)
        return getattr(response, _TAIL_ATTR)

    @override
    def has_more(self, response: requests.Response) -> bool:
        # a group ends at its empty page; the list goes on after it
        return self._tail(response).count > 0 or self.current_value[2]

    @override
    def continue_if_empty(self, response: requests.Response) -> bool:
        return True  # a page of records already read is no end: has_more decides

    @override
    def get_next(self, response: requests.Response) -> tuple:
        tail = self._tail(response)
        since, offset, group = self.current_value
        if offset and tail.count and tail.first == self._previous_first:
            msg = (f"{endpoint_of(response, self._model)} returned the same page for a new "
                   "offset: the server ignores offset, the list cannot be paged safely")
            raise FatalAPIError(msg)
        self._previous_first = tail.first if tail.count else None
        if since is not None and tail.count and _earlier(tail.first[1], since):
            msg = (f"{endpoint_of(response, self._model)} returned records modified before "
                   f"modified_at.ge({since}): the server ignores the filter, the list cannot be paged safely")
            raise FatalAPIError(msg)
        if group:
            self.seen = self.seen | tail.ids
            if tail.count:
                return (since, offset + tail.count, True)
            # the group is read: go on after it, a little before its end in
            # case a record of it was modified meanwhile (the ones read are skipped)
            size = len(self.seen)
            self._group_done = (since, size)
            return (since, max(size - 10, 0), False)
        last = tail.last_modified
        if since is None or last is None:
            return (since, offset + tail.count, False)
        if _same_time(last, since):  # the whole page at `since`
            self.seen = self.seen | tail.ids
            if self._group_done is not None and _same_time(self._group_done[0], since):
                return (since, offset + tail.count, False)  # read whole already: step over it
            return (since, 0, True)
        self.seen = tail.tied_ids
        self._group_done = None
        return (last, 0, False)

    def is_seen(self, record: dict) -> bool:
        """A record of the page being read that an earlier page already gave."""
        return record.get("id") in self.seen and _same_time(record.get("modified_at"), self.current_value[0])


def _same_time(first: t.Any, second: t.Any) -> bool:
    """The same instant, however each is written (``...17Z``, ``...17.000000Z``)."""
    if first == second:
        return True
    try:
        a, b = parse_datetime(first), parse_datetime(second)
    except (TypeError, ValueError):
        return False
    return a is not None and a == b


def _earlier(value: t.Any, than: t.Any) -> bool:
    try:
        first, bound = parse_datetime(value), parse_datetime(than)
    except (TypeError, ValueError):
        return False
    return first is not None and bound is not None and first < bound


# ----------------------------------------------------------------- base stream
class SessionReportsStream(StreamRules, FastRecordMessages, RESTStream):
    """Shared behaviour of every Fudo PAM stream (BATCH, retry waits, TLS, timeout, api_url: ``StreamRules``)."""

    # post_process hands out records of the schema's types already
    TYPE_CONFORMANCE_LEVEL = TypeConformanceLevel.NONE

    #: The default path, relative to api_url (``paths`` in config overrides it).
    default_path: str = ""
    #: StreamRules' cap on a single wait: 300 s here (the setting's description says so)
    MAX_WAIT_SECONDS = MAX_RETRY_WAIT

    @override
    @property
    def emit_activate_version_messages(self) -> bool:
        # a child (report_rows) holds only the reports read this sync, never a whole table
        return self.parent_stream_type is None and super().emit_activate_version_messages

    # path stays per tap (StreamRules has none): the taps read ``paths`` differently;
    # here an empty entry means default_path (the schema asks for "/..." anyway)
    @override
    @property
    def path(self) -> str:  # type: ignore[override]
        return (self.config.get("paths") or {}).get(self.name) or self.default_path

    @override
    @cached_property
    def authenticator(self) -> APIKeyAuthenticator:
        return APIKeyAuthenticator(key="Authorization", value=self.config["api_token"], location="header")

    @override
    @property
    def mask(self) -> SelectionMask:
        """The SDK's selection mask, remembering the answers it derives.

        Records carry free-form objects (``extra``, a report row's
        ``columns``): the SDK looks each of their keys up in the mask for every
        record, deriving the same answer from the parent each time.
        """
        resolved = super().mask
        remembered = self.__dict__.get("_remembered_mask")
        if remembered is None or remembered[0] is not resolved:
            remembered = self._remembered_mask = (resolved, _RememberingMask(resolved))
        return remembered[1]

    # ------------------------------------------------------------ requests
    # singer-sdk's validate_response classifies answers (429 and 5xx retried,
    # other 4xx fatal); StreamRules sets how often and how long it waits.
    def send_request(self, prepared: requests.PreparedRequest, context: Context | None) -> requests.Response:
        """Send a request built by ``build_prepared_request`` (which authenticates
        it) and classify its answer (``validate_response``): for the requests
        the tap makes besides its paged lists; wrap it in ``request_decorator``
        for singer-sdk's retries."""
        response = self.requests_session.send(prepared, timeout=self.timeout, allow_redirects=self.allow_redirects)
        self.validate_response(response)
        return response

    # ------------------------------------------------------------ errors
    @override
    def response_error_message(self, response: requests.Response) -> str:
        """The vendor's own message (its JSON ``error``, an HTML page's title),
        naming the endpoint, never the query or the host."""
        endpoint = endpoint_of(response, self.path)
        return f"{endpoint} answered {response.status_code} {response.reason}: {error_text(response)}"

    # ------------------------------------------------------------ records
    @override
    def post_process(self, row: dict, context: Context | None = None) -> dict | None:
        return row

    @override
    def generate_child_contexts(self, record: dict, context: Context | None) -> t.Iterable[Context | None]:
        # The SDK would copy the context for every record even with no child stream.
        if self.child_streams:
            yield from super().generate_child_contexts(record, context)


class SessionReportsListStream(RecordBookmarks, SessionReportsStream):
    """A Fudo list: a success envelope paged by modified_at, ids as strings."""

    #: The key of the list in the envelope (``report``, ``defined_report``...).
    model: str = ""
    replication_key = "modified_at"
    primary_keys = ("id",)
    is_sorted = True
    #: The attributes the document names; any other goes to ``extra``.
    id_fields: tuple[str, ...] = ()
    datetime_fields: tuple[str, ...] = ()
    #: Whether start_date bounds the first sync (events) or not (configuration).
    uses_start_date = True

    @override
    def get_new_paginator(self) -> ModifiedSincePaginator:
        """Pages from the bookmark (or start_date): its tokens are what
        ``get_url_params`` turns into a request, with the config."""
        start = self.starting_time(None)  # a list is never partitioned
        self._paginator = ModifiedSincePaginator(filter_time(start) if start else None, self.model)
        return self._paginator

    @override
    def get_records(self, context: Context | None) -> t.Iterable[dict]:
        self._bookmark = None
        if (context is None and self.replication_method == REPLICATION_INCREMENTAL
                and self.is_sorted and self.state_partitioning_keys is None):
            self._bookmark = self.get_context_state(None)
        try:
            yield from super().get_records(context)
        finally:
            self._bookmark = None

    _bookmark: dict | None = None
    #: True while records older than the bookmark go out (reports re-checked
    #: by id): they must not move it back, nor trip the sort check
    holding_bookmark = False

    # The bookmark of a sorted list read whole is set here, without singer-sdk's
    # per-record state lookups and JSON conversions (_sdk.RecordBookmarks):
    # 1.1 us a record instead of 3.9 us (singer-sdk 0.54.9, 100,000 records),
    # about 4% of the reports benchmark's CPU (tests/bench, reports case).
    # The SDK's sort check is kept (test_errors: a server that ignores the order).
    @override
    def record_moves_bookmark(self, record: dict, context: Context | None) -> bool:
        """The bookmark advances to the record's ``modified_at``, never back;
        True hands the record to singer-sdk's own step (partitions, no bookmark yet)."""
        if self.holding_bookmark:
            return False
        state = self._bookmark
        value = record.get(self.replication_key)
        if state is None or context is not None or value is None:
            return True
        old = state.get("replication_key_value")
        if old is not None and self.check_sorted and value < old:
            msg = (f"Unsorted data detected in stream. Latest value '{value}' is "
                   f"smaller than previous max '{old}'.")
            raise InvalidStreamSortException(msg)
        state["replication_key"] = self.replication_key
        state["replication_key_value"] = value
        return False

    def starting_time(self, context: Context | None) -> dt.datetime | None:
        """The bookmark, else start_date (or 30 days ago) for event lists."""
        state = self.get_context_state(context)
        bookmark = state.get("replication_key_value")
        if bookmark and state.get("replication_key") == self.replication_key \
                and self.replication_method == REPLICATION_INCREMENTAL:  # FULL_TABLE (meltano.yml): read whole
            return parse_datetime(bookmark)
        if not self.uses_start_date:
            return None
        # the clock is read here, through this module's ``dt`` (tests freeze it)
        return period.start_instant(self.config, dt.datetime.now(dt.timezone.utc), lowercase_z=True)

    @override
    def get_http_request(self, *, page: PageContext) -> HTTPRequest:
        request = super().get_http_request(page=page)
        request.safe_query_chars = "(),!"
        return request

    @override
    def get_url_params(self, context: Context | None, next_page_token: t.Any) -> dict:
        since, offset, group = next_page_token
        terms = []
        if since is not None:
            terms.append(f"modified_at.ge({since})")
            if group:  # one time's records, in an order that holds
                terms.append(f"modified_at.le({since})")
        if end := self._end_time:
            # le, the operator the document shows (lt is not in it); the one
            # time it adds is dropped in post_process, end_date being exclusive
            terms.append(f"modified_at.le({filter_time(end)})")
        terms.extend(self.extra_filter_terms())
        params: dict[str, t.Any] = {
            "order": "id" if group else "modified_at",
            "limit": int(self.config["page_size"]),
            "offset": offset,
        }
        if terms:
            params["filter"] = ",".join(terms)
        return params

    def extra_filter_terms(self) -> list[str]:
        return []

    @override
    def parse_response(self, response: requests.Response) -> t.Iterable[dict]:
        records = envelope_records(response, self.model)
        paginator = self._paginator
        if paginator is not None and paginator.seen:
            return [record for record in records if not paginator.is_seen(record)]
        return records

    _paginator: ModifiedSincePaginator | None = None

    @cached_property
    def _declared(self) -> frozenset[str]:
        return frozenset(self.schema["properties"]) - {"extra"}

    @cached_property
    def _converted_times(self) -> dict[str, str]:
        return {}

    @cached_property
    def _end_time(self) -> dt.datetime | None:
        return period.end_instant(self.config, lowercase_z=True)

    @cached_property
    def _end_text(self) -> str | None:
        return iso_utc(self._end_time) if self._end_time else None

    @override
    def post_process(self, row: dict, context: Context | None = None) -> dict | None:
        declared = self._declared
        extra = None if row.keys() <= declared else {key: row.pop(key) for key in row.keys() - declared}
        for key in self.id_fields:
            value = row.get(key)
            if value is not None and not isinstance(value, str):
                row[key] = str(value)
        converted_times = self._converted_times
        for key in self.datetime_fields:
            value = row.get(key)
            if value is None:
                continue
            # records of a page often share their times (a report's modified_at
            # and generated_at move together): each is converted once
            converted = converted_times.get(value) if value.__class__ is str else None
            if converted is None:
                try:
                    converted = utc_text(value)
                except (TypeError, ValueError):
                    # Keep what cannot be read as a time, rather than lose it.
                    row[key] = None
                    extra = extra or {}
                    extra[f"{key}_unparsed"] = value
                    continue
                if value.__class__ is str:
                    if len(converted_times) >= 4096:
                        converted_times.clear()
                    converted_times[value] = converted
            row[key] = converted
        row["extra"] = extra
        end = self._end_text
        if end is not None and row.get("modified_at") is not None and row["modified_at"] >= end:
            return None  # modified at end_date exactly: the bound is exclusive
        return row


def utc_text(value: t.Any) -> str:
    """``iso_utc`` of a time string; UTC times with microseconds by slicing."""
    if type(value) is str and value[10:11] == "T" and value[19:20] == ".":
        if len(value) == 27 and value[26] == "Z":
            return value[:26] + "+00:00"
        if len(value) == 32 and value.endswith("+00:00"):
            return value
        try:
            parsed = _fromisoformat(value)
        except ValueError:
            parsed = None
        if parsed is not None and parsed.tzinfo is not None:
            return parsed.astimezone(_UTC).isoformat(timespec="microseconds")
    parsed = parse_datetime(value)
    if parsed is None:
        raise ValueError("no time")
    return iso_utc(parsed)


_UTC = dt.timezone.utc
_fromisoformat = dt.datetime.fromisoformat


class _RememberingMask(SelectionMask):
    @override
    def __missing__(self, breadcrumb: tuple[str, ...]) -> bool:
        selected = super().__missing__(breadcrumb)
        self[breadcrumb] = selected
        return selected

