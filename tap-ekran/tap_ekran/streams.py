"""The Ekran sessions stream: one time range per sync, from the bookmark."""

from __future__ import annotations

import dataclasses
import datetime as dt
import typing as t
from functools import cached_property

from singer_sdk import typing as th
from singer_sdk.pagination import BaseAPIPaginator
from typing_extensions import override

from tap_ekran import period
from tap_ekran._sdk import RecordBookmarks, write_state
from tap_ekran.client import (
    UTC,
    EkranAPIError,
    EkranStream,
    is_unset_date,
    page_of,
    parse_datetime,
    server_zone,
    timespan_seconds,
    utc_time,
)

if t.TYPE_CHECKING:
    import requests

#: time spans of the document, each also emitted in seconds
DURATION_FIELDS = (
    ("duration", "durationSeconds"),
    ("idleTime", "idleTimeSeconds"),
    ("productivityTime", "productivityTimeSeconds"),
)
MAX_LOGGED_BAD_VALUES = 10
fromisoformat = dt.datetime.fromisoformat
#: state keys beside the bookmark (see SessionsStream)
RESUME = "resume"
COMPLETE_IDS = "complete_ids"
#: singer-sdk's own state entry for the replication key of the records read so far
PROGRESS_MARKERS = "progress_markers"


class SessionsPage(t.NamedTuple):
    """The paginator's token: one request of a sync's one time range.

    ``start`` and ``page_index`` are what the request sends (``start`` on the
    server's clock, ``pageIndex``). ``until`` is the end of the synced period
    (``end_date``, or the time the sync began if earlier): it is not sent (see
    SessionsStream), but the open-session hold is measured back from it and the
    bookmark never passes it. ``resumed``: the range is that of an interrupted
    sync, taken up at ``page_index``.
    """

    start: dt.datetime
    page_index: int
    until: dt.datetime
    resumed: bool = False


@dataclasses.dataclass
class SyncMemory:
    """What a sync remembers of the sessions it read, for the state it writes
    once every page is out (see SessionsStream)."""

    #: the sync's first request
    first: SessionsPage
    #: the earliest the next sync can start: closed sessions before it cannot cross it
    floor: dt.datetime
    #: sessions to skip (the state's complete_ids)
    complete: frozenset[int]
    #: whether the stream writes STATE messages itself: the resume point after
    #: each page, the bookmark at the end. Not when the records go out in
    #: BATCH files: those are written after the pages are read, and
    #: singer-sdk writes the state after each of them.
    write_states: bool = True
    #: the login of the oldest session seen open within the hold
    oldest_open: dt.datetime | None = None
    #: (sessionId, logout) of the sessions of ``complete`` skipped that still close after ``floor``
    skipped: list[tuple[int, dt.datetime]] = dataclasses.field(default_factory=list)
    #: (sessionId, login, logout) of sessions emitted closed at or after ``floor``
    closed: list[tuple[int, dt.datetime, dt.datetime]] = dataclasses.field(default_factory=list)


class SessionsPaginator(BaseAPIPaginator[SessionsPage]):
    """The pages of one range: ``pageIndex`` from the first token's (0 unless
    a sync resumes), until the pages cover ``totalCount`` or one comes back
    short (fewer than ``sessionCount``)."""

    def __init__(self, first: SessionsPage, page_size: int) -> None:
        super().__init__(first)
        self.page_size = page_size

    def is_last_page(self, response: requests.Response) -> bool:
        payload = page_of(response)
        received = len(payload["sessions"])
        page_index = self.current_value.page_index
        return received < self.page_size or (page_index + 1) * self.page_size >= payload["totalCount"]

    def short_of_total(self, response: requests.Response) -> int:
        """How many sessions ``totalCount`` promised beyond a short last page
        (0 when the pages account for it)."""
        payload = page_of(response)
        received = len(payload["sessions"])
        if received >= self.page_size:
            return 0
        return max(payload["totalCount"] - self.current_value.page_index * self.page_size - received, 0)

    @override
    def has_more(self, response: requests.Response) -> bool:
        return not self.is_last_page(response)

    @override
    def get_next(self, response: requests.Response) -> SessionsPage:
        return self.current_value._replace(page_index=self.current_value.page_index + 1)


class SessionsStream(RecordBookmarks, EkranStream):
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

    The range is the paginator's token (SessionsPage): the request body
    depends on the token and the config only. Records never move the bookmark:
    singer-sdk's marker of the last record read (its ``progress_markers``,
    kept because the stream is not sorted by loginDate) is dropped when the
    bookmark is written.
    """

    name = "sessions"
    default_path = "/ekranapi/sessions"
    http_method = "POST"
    primary_keys = ("sessionId",)
    replication_key = "loginDate"
    #: sessions come in sessionId order, not by loginDate; singer-sdk keeps
    #: its marker of the last record apart from the bookmark, which the
    #: stream writes itself once every page is out (see `_sync_complete`)
    is_sorted = False
    check_sorted = False

    # Records never move the bookmark, so singer-sdk's per-record step is
    # skipped (_sdk.RecordBookmarks): 2.9 us a record for nothing, about 5% of
    # the tap's CPU in tests/bench/bench_ekran.py (singer-sdk 0.54.9).
    @override
    def record_moves_bookmark(self, record: dict, context: t.Any) -> bool:
        return False

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
        self._paginator: SessionsPaginator | None = None
        self._memory: SyncMemory | None = None
        self._bad_values_logged = 0

    # ------------------------------------------------------------- settings
    @cached_property
    def zone(self) -> dt.tzinfo:
        """The server's clock (the `timezone` setting, validated before any request)."""
        return server_zone(self.config["timezone"])

    @property
    def page_size(self) -> int:
        return int(self.config["page_size"])

    @property
    def lookback(self) -> dt.timedelta:
        return dt.timedelta(hours=float(self.config["lookback_hours"]))

    @property
    def open_session_hold(self) -> dt.timedelta:
        return dt.timedelta(hours=float(self.config["open_session_hold_hours"]))

    @cached_property
    def end(self) -> dt.datetime | None:
        """The exclusive end of the synced period (end_date), None: up to now."""
        return period.end_instant(self.config)

    def next_start(self, bookmark: dt.datetime) -> dt.datetime:
        """Where a sync from ``bookmark`` starts: the lookback before it, never before start_date."""
        start = period.start_instant(self.config, dt.datetime.now(UTC))
        return max(bookmark - self.lookback, start).astimezone(UTC).replace(microsecond=0)

    # --------------------------------------------------------------- period
    def first_page(self, state: t.Mapping[str, t.Any], now: dt.datetime) -> SessionsPage:
        """The first request of a sync from ``state`` (the stream's bookmark
        entry) that begins at ``now``: the resume point of an interrupted
        sync, else the bookmark less the lookback, else start_date."""
        now = now.astimezone(UTC).replace(microsecond=0)
        until = min(self.end, now) if self.end is not None else now
        resume = state.get(RESUME)
        if isinstance(resume, dict):
            start = parse_datetime(resume.get("start"))
            if start is not None and _is_int(resume.get("page_index")):
                return SessionsPage(start, int(resume["page_index"]), until, resumed=True)
        bookmark = parse_datetime(state.get("replication_key_value"))
        start = self.next_start(bookmark) if bookmark else period.start_instant(self.config, dt.datetime.now(UTC))
        return SessionsPage(start, 0, until)

    @override
    def get_records(self, context: t.Mapping[str, t.Any] | None) -> t.Iterable[dict]:
        state = self.get_context_state(context)
        first = self.first_page(state, dt.datetime.now(UTC))
        self._memory = SyncMemory(
            first=first,
            floor=first.until - self.open_session_hold - self.lookback,
            complete=frozenset(int(sid) for sid in state.get(COMPLETE_IDS) or () if _is_int(sid)),
            write_states=self.get_batch_config(self.config) is None,
        )
        if first.resumed:
            self.logger.info("sessions: resuming the sync from %s at pageIndex %d", first.start.isoformat(),
                             first.page_index)
        if first.start >= first.until:
            self.logger.info("sessions: nothing to sync, %s is not before %s", first.start.isoformat(),
                             first.until.isoformat())
            return ()
        # singer-sdk's marker of the last record read, which the bookmark never takes (see the class)
        state[PROGRESS_MARKERS] = {"Note": "the last record read; the stream resumes from 'resume'"}
        self.logger.info(
            "sessions: requesting the sessions started or finished from %s%s, %d per page",
            first.start.isoformat(), f" to {self.end.isoformat()}" if self.end else "", self.page_size,
        )
        return self.request_records(context)

    @override
    def get_new_paginator(self) -> SessionsPaginator:
        assert self._memory is not None
        self._paginator = SessionsPaginator(self._memory.first, self.page_size)
        return self._paginator

    # -------------------------------------------------------------- request
    @override
    def get_url_params(self, context: t.Any, next_page_token: t.Any) -> dict:
        return {}

    @override
    def prepare_request_payload(self, context: t.Any, next_page_token: SessionsPage | None) -> dict:
        """The body of the request ``next_page_token`` stands for (nothing else
        of the sync goes into it)."""
        assert next_page_token is not None
        return {
            "start": _api_time(next_page_token.start, self.zone),
            "sessionCount": self.page_size,
            "pageIndex": next_page_token.page_index,
        }

    # -------------------------------------------------------------- records
    @override
    def parse_response(self, response: requests.Response) -> t.Iterable[dict]:
        assert self._paginator is not None and self._memory is not None
        page = self._paginator.current_value
        rows = page_of(response)["sessions"]
        for index, row in enumerate(rows):
            if row.__class__ is not dict or row.get("sessionId") is None:
                raise EkranAPIError(
                    f"Ekran answered POST {self.path} (start {page.start.isoformat()}, pageIndex "
                    f"{page.page_index}) with sessions[{index}] that is not a session with a sessionId: "
                    f"{str(row)[:200]!r}"
                )
        yield from rows
        # Reached once every session of this page has been written.
        if not self._paginator.is_last_page(response):
            if self._memory.write_states:
                state = self.get_context_state(self.context)
                state[RESUME] = {"start": page.start.isoformat(), "page_index": page.page_index + 1}
                self.state_manager.is_flushed = False
                write_state(self)
            return
        missing = self._paginator.short_of_total(response)
        if missing:
            self.logger.warning(
                "sessions: pageIndex %d held %d sessions, fewer than sessionCount=%d, though totalCount=%d "
                "promised %d more; the range ends at a short page, as the API's paging implies (does the "
                "server cap sessionCount lower?)",
                page.page_index, len(rows), self.page_size, page_of(response)["totalCount"], missing,
            )
        self._sync_complete(page)

    @override
    def post_process(self, row: dict, context: t.Mapping[str, t.Any] | None = None) -> dict | None:
        """Date-times in UTC, each time span also in seconds (null where it
        does not parse), undocumented fields into ``extra``. A session of
        ``complete_ids`` is remembered, not emitted (see the class)."""
        memory = self._memory
        assert memory is not None
        get = row.get
        # The usual values (UTC, as the document's sample writes them) are
        # parsed inline: post_process is most of the tap's own CPU per record.
        raw = get("loginDate")
        if raw.__class__ is str and raw.endswith("+00:00") and not raw.startswith("0001-01-01"):
            try:
                login: dt.datetime | None = fromisoformat(raw)
            except ValueError:
                login = self._datetime_field(row, "loginDate", raw)
        elif is_unset_date(raw):  # null, empty, or .NET's "not set"
            login = None
            if raw is not None:
                row["loginDate"] = None
        else:
            login = self._datetime_field(row, "loginDate", raw)
        raw = get("logoutDate")
        open_session = False
        if raw.__class__ is str and raw.endswith("+00:00") and not raw.startswith("0001-01-01"):
            try:
                logout: dt.datetime | None = fromisoformat(raw)
            except ValueError:
                logout = self._datetime_field(row, "logoutDate", raw)
        elif is_unset_date(raw):  # an open session's logoutDate, as .NET may write it too
            open_session = True
            logout = None
            if raw is not None:
                row["logoutDate"] = None
        else:
            logout = self._datetime_field(row, "logoutDate", raw)
        end = self.end
        if end is not None and login is not None and login >= end:
            return None  # end_date: `end` is not sent (note 3 would clip), so filter here
        for field, seconds_field in DURATION_FIELDS:
            raw = get(field)
            seconds = row[seconds_field] = timespan_seconds(raw)
            if seconds is None and raw is not None:
                if raw.__class__ is not str:
                    row[field] = str(raw)
                self._log_bad_value(row, field, raw,
                                    f"not a valid time span (h:mm:ss.fffffff); {seconds_field} is null")
        sid = row["sessionId"]
        if open_session or (logout is not None and logout >= memory.floor):
            self._remember(memory, sid, login, logout, open_session)
        if sid in memory.complete:
            return None
        unknown = row.keys() - self._KNOWN_FIELDS
        if unknown:
            extra = get("extra")
            extra = dict(extra) if isinstance(extra, dict) else {}
            for key in unknown:
                extra[key] = row.pop(key)
            row["extra"] = extra
        return row

    def _datetime_field(self, row: dict, field: str, raw: t.Any) -> dt.datetime | None:
        """``row[field]`` (``raw``, set) in UTC, and as a datetime; a value that
        does not parse is emitted as null, and kept raw in ``extra``."""
        parsed = utc_time(raw, self.zone)
        if parsed is None:
            row[field] = None
            self._log_bad_value(row, field, raw, "not an ISO 8601 date-time; emitted as null")
            row["extra"] = {**(row.get("extra") or {}), f"{field}Raw": raw}
            return None
        row[field] = parsed[0]
        return parsed[1]

    @override
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
    def _remember(self, memory: SyncMemory, sid: t.Any, login: dt.datetime | None,
                  logout: dt.datetime | None, open_session: bool) -> None:
        """What the bookmark and ``complete_ids`` need to know of a session."""
        if open_session:
            hold = self.open_session_hold
            if (login is not None and hold and login >= memory.first.until - hold
                    and (memory.oldest_open is None or login < memory.oldest_open)):
                memory.oldest_open = login
            return
        if logout is None or logout < memory.floor:
            return  # closed before any next start: never read again
        if sid in memory.complete:
            memory.skipped.append((sid, logout))
        elif login is not None:
            memory.closed.append((sid, login, logout))

    def _sync_complete(self, page: SessionsPage) -> None:
        """Every page is written: move the bookmark, say which sessions the
        next sync must skip, and drop the resume point."""
        memory = self._memory
        assert memory is not None
        state = self.get_context_state(self.context)
        state.pop(PROGRESS_MARKERS, None)  # the bookmark is the stream's, not the last record's
        state.pop(RESUME, None)
        self.state_manager.is_flushed = False
        if page.resumed:
            # What the pages before the interruption held (open sessions,
            # sessions crossing the next start) is not known: keep the
            # bookmark and complete_ids of the sync that began this one, so
            # that the next sync reads the range again, whole.
            self.logger.info("sessions: a resumed sync keeps the bookmark it began from")
        else:
            bookmark = page.until
            if memory.oldest_open is not None and memory.oldest_open < bookmark:
                bookmark = memory.oldest_open.replace(microsecond=0)
            start = self.next_start(bookmark)
            complete = {sid for sid, login, logout in memory.closed if login < start <= logout}
            complete.update(sid for sid, logout in memory.skipped if logout >= start)
            state["replication_key"] = self.replication_key
            state["replication_key_value"] = bookmark.isoformat()
            state[COMPLETE_IDS] = sorted(sid for sid in complete if _is_int(sid))
        if memory.write_states:
            write_state(self)


def _is_int(value: t.Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _api_time(value: dt.datetime, zone: dt.tzinfo = UTC) -> str:
    """A time as the document's examples write it ("2021-04-01T12:00:00"),
    without an offset: on the server's clock, ``zone``."""
    return value.astimezone(zone).strftime("%Y-%m-%dT%H:%M:%S")


STREAM_TYPES = (SessionsStream,)
