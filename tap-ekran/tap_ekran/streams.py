"""The Ekran sessions stream: one time range per sync, from the bookmark."""

from __future__ import annotations

import datetime as dt
import typing as t
from functools import cached_property

from singer_sdk import typing as th
from singer_sdk.pagination import BaseAPIPaginator

from tap_ekran.client import (
    MAX_SESSION_COUNT,
    UTC,
    EkranAPIError,
    EkranStream,
    config_start_date,
    is_unset_date,
    page_of,
    parse_datetime,
    server_zone,
    timespan_seconds,
    utc_iso,
)

if t.TYPE_CHECKING:
    import requests

#: time spans of the document, each also emitted in seconds
DURATION_FIELDS = (
    ("duration", "durationSeconds"),
    ("idleTime", "idleTimeSeconds"),
    ("productivityTime", "productivityTimeSeconds"),
)
DATETIME_FIELDS = ("loginDate", "logoutDate")
MAX_LOGGED_BAD_VALUES = 10
#: state keys beside the bookmark (see SessionsStream)
RESUME = "resume"
COMPLETE_IDS = "complete_ids"


class PageIndexPaginator(BaseAPIPaginator[int]):
    """``pageIndex`` from ``first`` (0 unless a sync resumes), until the pages
    cover ``totalCount`` or one comes back short (fewer than ``sessionCount``)."""

    def __init__(self, first: int, page_size: int) -> None:
        super().__init__(first)
        self.page_size = page_size

    def is_last_page(self, response: requests.Response) -> bool:
        payload = page_of(response)
        received = len(payload["sessions"])
        return received < self.page_size or (self.current_value + 1) * self.page_size >= payload["totalCount"]

    def short_of_total(self, response: requests.Response) -> int:
        """How many sessions ``totalCount`` promised beyond a short last page
        (0 when the pages account for it)."""
        payload = page_of(response)
        received = len(payload["sessions"])
        if received >= self.page_size:
            return 0
        return max(payload["totalCount"] - self.current_value * self.page_size - received, 0)

    def has_more(self, response: requests.Response) -> bool:
        return not self.is_last_page(response)

    def get_next(self, response: requests.Response) -> int:
        return self.current_value + 1


class SessionsStream(EkranStream):
    """Every session started or finished since the bookmark.

    Each sync is one request range: ``start`` is the bookmark less
    ``lookback_hours`` (``start_date`` on the first sync), and no ``end`` is
    sent, so the API selects every session "started or finished after"
    ``start`` (the document's note 1), read page by page (``pageIndex``);
    with ``end_date``, the sessions that logged in at or after it are dropped
    by the tap. The range is not cut into windows, nor given an ``end``,
    because the API clips the sessions that cross a range's edges: one
    started before ``start`` comes with its first activity after ``start`` as
    its ``loginDate`` (note 2), one finished after ``end`` with its last
    activity before ``end`` as its ``logoutDate`` (note 3). A session is
    therefore emitted whole, except one that crosses ``start_date`` (as the
    API answers).

    State (the stream's bookmark entry):

    - ``replication_key_value``: where the next sync starts (less the
      lookback): the time this sync started, or the ``loginDate`` of the
      oldest session seen still open, if earlier, so that the next sync reads
      that session again, whole, once it has closed. Sessions that logged in
      more than ``open_session_hold_hours`` before do not hold it (a client
      that never reported a logout must not pin the bookmark).
    - ``complete_ids``: the sessions this sync emitted closed that cross the
      next sync's ``start``. The next sync would get them clipped (note 2);
      it skips them instead, keeping the whole ones already loaded.
    - ``resume``: while a sync runs, its ``start`` and the next ``pageIndex``,
      written after every page, so that a sync that is killed resumes at the
      page it was reading. A resumed sync leaves the bookmark and
      ``complete_ids`` as it found them (what the pages before the
      interruption held is not known), so the next sync reads its range again.
    """

    name = "sessions"
    default_path = "/ekranapi/sessions"
    http_method = "POST"
    primary_keys = ("sessionId",)
    replication_key = "loginDate"
    #: the bookmark is written by the stream at the end of a sync (see
    #: `_sync_complete`), so it is always a resumable point ...
    is_sorted = True
    #: ... and it may step back, to an open session
    check_sorted = False

    schema = th.PropertiesList(
        th.Property("sessionId", th.IntegerType, required=True, description="The ID of the session."),
        th.Property("userId", th.IntegerType, description="The ID of the user."),
        th.Property("userName", th.StringType, description="The user name."),
        th.Property("clientGuid", th.StringType, description="The GUID of the Client."),
        th.Property("clientName", th.StringType, description="The name of the Client."),
        th.Property("loginDate", th.DateTimeType, description="When the session started (UTC)."),
        th.Property("logoutDate", th.DateTimeType,
                    description="When the session ended (UTC); null while the session is open."),
        th.Property("duration", th.StringType, description="The duration of the session, as the API wrote it."),
        th.Property("idleTime", th.StringType,
                    description="The total time when the user was not active, as the API wrote it."),
        th.Property("productivityTime", th.StringType,
                    description="The total time when the user was active, as the API wrote it."),
        th.Property("durationSeconds", th.NumberType,
                    description="duration in seconds; null where the API's text is not a valid time span."),
        th.Property("idleTimeSeconds", th.NumberType,
                    description="idleTime in seconds; null where the API's text is not a valid time span."),
        th.Property("productivityTimeSeconds", th.NumberType,
                    description="productivityTime in seconds; null where the API's text is not a valid time span."),
        th.Property("extra", th.ObjectType(additional_properties=True),
                    description="Fields the API returned that the document does not name."),
    ).to_dict()

    _KNOWN_FIELDS = frozenset(schema["properties"])

    def __init__(self, *args: t.Any, **kwargs: t.Any) -> None:
        super().__init__(*args, **kwargs)
        self._paginator: PageIndexPaginator | None = None
        self._start: dt.datetime | None = None
        self._end: dt.datetime | None = None
        self._resumed = False
        self._first_page = 0
        self._bad_values_logged = 0
        self._reset_sync_memory()

    def _reset_sync_memory(self, until: dt.datetime | None = None) -> None:
        #: the time the sync started (or end_date): the bookmark unless an open session holds it
        self._until = until
        self._oldest_open: dt.datetime | None = None
        #: sessions to skip (state's complete_ids), and those skipped that still close after `floor`
        self._complete: frozenset[int] = frozenset()
        self._skipped: list[tuple[int, dt.datetime]] = []
        #: (sessionId, login, logout) of sessions emitted closed at or after `floor`
        self._closed: list[tuple[int, dt.datetime, dt.datetime]] = []
        #: the earliest the next sync can start: closed sessions before it cannot cross it
        self._floor: dt.datetime | None = None

    # ------------------------------------------------------------- settings
    @cached_property
    def zone(self) -> dt.tzinfo:
        """The server's clock (the `timezone` setting, validated before any request)."""
        return server_zone(self.config.get("timezone"))

    @property
    def page_size(self) -> int:
        return int(self.config.get("page_size") or MAX_SESSION_COUNT)

    @property
    def lookback(self) -> dt.timedelta:
        return dt.timedelta(hours=float(self.config.get("lookback_hours", 1)))

    @property
    def open_session_hold(self) -> dt.timedelta:
        return dt.timedelta(hours=max(float(self.config.get("open_session_hold_hours", 24)), 0.0))

    def next_start(self, bookmark: dt.datetime) -> dt.datetime:
        """Where a sync from ``bookmark`` starts: the lookback before it, never before start_date."""
        return max(bookmark - self.lookback, config_start_date(self.config)).astimezone(UTC).replace(microsecond=0)

    # --------------------------------------------------------------- period
    def get_records(self, context: t.Mapping[str, t.Any] | None) -> t.Iterable[dict]:
        state = self.get_context_state(context)
        now = dt.datetime.now(UTC).replace(microsecond=0)
        end = parse_datetime(self.config.get("end_date")) if self.config.get("end_date") else None
        until = min(end, now) if end is not None else now
        self._reset_sync_memory(until)
        self._complete = frozenset(int(sid) for sid in state.get(COMPLETE_IDS) or () if _is_int(sid))
        self._floor = until - self.open_session_hold - self.lookback

        resume = state.get(RESUME)
        resumed = parse_datetime(resume.get("start")) if isinstance(resume, dict) else None
        self._resumed = resumed is not None and _is_int(resume.get("page_index"))
        if self._resumed:
            self._start, self._first_page = resumed, int(resume["page_index"])
            self.logger.info("sessions: resuming the sync from %s at pageIndex %d", resumed.isoformat(),
                             self._first_page)
        else:
            bookmark = parse_datetime(state.get("replication_key_value"))
            self._start = self.next_start(bookmark) if bookmark else config_start_date(self.config)
            self._first_page = 0
        self._end = end
        if self._start >= until:
            self.logger.info("sessions: nothing to sync, %s is not before %s", self._start.isoformat(),
                             until.isoformat())
            return ()
        self.logger.info(
            "sessions: requesting the sessions started or finished from %s%s, %d per page",
            self._start.isoformat(), f" to {end.isoformat()}" if end else "", self.page_size,
        )
        return self.request_records(context)

    def get_new_paginator(self) -> PageIndexPaginator:
        self._paginator = PageIndexPaginator(self._first_page, self.page_size)
        return self._paginator

    # -------------------------------------------------------------- request
    def get_url_params(self, context: t.Any, next_page_token: t.Any) -> dict:
        return {}

    def prepare_request_payload(self, context: t.Any, next_page_token: int | None) -> dict:
        assert self._paginator is not None and self._start is not None
        body: dict[str, t.Any] = {"start": _api_time(self._start, self.zone)}
        body["sessionCount"] = self.page_size
        body["pageIndex"] = self._paginator.current_value if next_page_token is None else next_page_token
        return body

    # -------------------------------------------------------------- records
    def parse_response(self, response: requests.Response) -> t.Iterable[dict]:
        assert self._paginator is not None and self._start is not None
        page_index = self._paginator.current_value
        rows = page_of(response)["sessions"]
        for index, row in enumerate(rows):
            if row.__class__ is not dict or row.get("sessionId") is None:
                raise EkranAPIError(
                    f"Ekran answered POST {self.path} (start {self._start.isoformat()}, pageIndex "
                    f"{page_index}) with sessions[{index}] that is not a session with a sessionId: {str(row)[:200]!r}"
                )
        yield from rows
        # Reached once every session of this page has been written.
        if not self._paginator.is_last_page(response):
            state = self.get_context_state(self.context)
            state[RESUME] = {"start": self._start.isoformat(), "page_index": page_index + 1}
            self.state_manager.is_flushed = False
            self._write_state_message()
            return
        missing = self._paginator.short_of_total(response)
        if missing:
            self.logger.warning(
                "sessions: pageIndex %d held %d sessions, fewer than sessionCount=%d, though totalCount=%d "
                "promised %d more; the range ends at a short page, as the API's paging implies (does the "
                "server cap sessionCount lower?)",
                page_index, len(rows), self.page_size, page_of(response)["totalCount"], missing,
            )
        self._sync_complete()

    def post_process(self, row: dict, context: t.Mapping[str, t.Any] | None = None) -> dict | None:
        """Date-times in UTC, each time span also in seconds (null where it
        does not parse), undocumented fields into ``extra``. A session of
        ``complete_ids`` is remembered, not emitted (see the class)."""
        get = row.get
        open_session = is_unset_date(get("logoutDate"))
        skip = row["sessionId"] in self._complete
        zone = self.zone
        for field in DATETIME_FIELDS:
            raw = get(field)
            if raw is None:
                continue
            if is_unset_date(raw):  # an open session's logoutDate as .NET may write it
                row[field] = None
                continue
            value = row[field] = utc_iso(raw, zone)
            if value is None:
                self._log_bad_value(row, field, raw, "not an ISO 8601 date-time; emitted as null")
                row["extra"] = {**(get("extra") or {}), f"{field}Raw": raw}
        if self._end is not None:  # end_date: `end` is not sent (note 3 would clip), so filter here
            login = _utc(row.get("loginDate"))
            if login is not None and login >= self._end:
                return None
        for field, seconds_field in DURATION_FIELDS:
            raw = get(field)
            seconds = row[seconds_field] = timespan_seconds(raw)
            if seconds is None and raw is not None:
                if raw.__class__ is not str:
                    row[field] = str(raw)
                self._log_bad_value(row, field, raw, f"not a valid time span (h:mm:ss.fffffff); {seconds_field} is null")
        self._remember(row, open_session)
        if skip:
            return None
        unknown = row.keys() - self._KNOWN_FIELDS
        if unknown:
            extra = get("extra")
            extra = dict(extra) if isinstance(extra, dict) else {}
            extra.update((key, row.pop(key)) for key in unknown)
            row["extra"] = extra
        return row

    def generate_child_contexts(self, record: dict, context: t.Any) -> t.Iterable[dict | None]:
        """None: sessions has no child streams. (singer-sdk's default hands
        each record on as a child context and copies it: ~5% of the CPU.)"""
        return ()

    def _log_bad_value(self, row: dict, field: str, raw: t.Any, problem: str) -> None:
        self._bad_values_logged += 1
        if self._bad_values_logged <= MAX_LOGGED_BAD_VALUES:
            self.logger.warning(
                "sessions: %s %r of session %s is %s%s", field, raw, row.get("sessionId"), problem,
                " (further ones are not logged)" if self._bad_values_logged == MAX_LOGGED_BAD_VALUES else "",
            )

    # ---------------------------------------------------------------- state
    def _remember(self, row: dict, open_session: bool) -> None:
        """What the bookmark and ``complete_ids`` need to know of a session."""
        if open_session:
            login = parse_datetime(row.get("loginDate"))
            assert self._until is not None
            hold = self.open_session_hold
            if login is not None and hold and login >= self._until - hold:
                if self._oldest_open is None or login < self._oldest_open:
                    self._oldest_open = login
            return
        logout = _utc(row.get("logoutDate"))
        if logout is None or self._floor is None or logout < self._floor:
            return  # closed before any next start: never read again
        sid = row["sessionId"]
        if sid in self._complete:
            self._skipped.append((sid, logout))
            return
        login = _utc(row.get("loginDate"))
        if login is not None:
            self._closed.append((sid, login, logout))

    def _sync_complete(self) -> None:
        """Every page is written: move the bookmark, say which sessions the
        next sync must skip, and drop the resume point."""
        assert self._until is not None
        state = self.get_context_state(self.context)
        if self._resumed:
            # What the pages before the interruption held (open sessions,
            # sessions crossing the next start) is not known: keep the
            # bookmark and complete_ids of the sync that began this one, so
            # that the next sync reads the range again, whole.
            state.pop(RESUME, None)
            self.logger.info("sessions: a resumed sync keeps the bookmark it began from")
            self.state_manager.is_flushed = False
            self._write_state_message()
            return
        bookmark = self._until
        if self._oldest_open is not None and self._oldest_open < bookmark:
            bookmark = self._oldest_open.replace(microsecond=0)
        start = self.next_start(bookmark)
        complete = {sid for sid, login, logout in self._closed if login < start <= logout}
        complete.update(sid for sid, logout in self._skipped if logout >= start)
        state["replication_key"] = self.replication_key
        state["replication_key_value"] = bookmark.isoformat()
        state[COMPLETE_IDS] = sorted(sid for sid in complete if _is_int(sid))
        state.pop(RESUME, None)
        self.state_manager.is_flushed = False
        self._write_state_message()

    def _increment_stream_state(self, latest_record: dict, *, context: t.Any = None) -> None:
        """Records do not move the bookmark: a complete sync does (`_sync_complete`).

        singer-sdk would otherwise set it to each record's loginDate, which
        says nothing about what has been read.
        """


def _is_int(value: t.Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _utc(value: t.Any) -> dt.datetime | None:
    """A date-time post_process wrote (ISO 8601, UTC) as a datetime."""
    if value.__class__ is not str:
        return None
    try:
        parsed = dt.datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def _api_time(value: dt.datetime, zone: dt.tzinfo = UTC) -> str:
    """A time as the document's examples write it ("2021-04-01T12:00:00"),
    without an offset: on the server's clock, ``zone``."""
    return value.astimezone(zone).strftime("%Y-%m-%dT%H:%M:%S")


STREAM_TYPES = (SessionsStream,)
