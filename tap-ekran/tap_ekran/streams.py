"""The Ekran sessions stream, read in time windows from the bookmark."""

from __future__ import annotations

import datetime as dt
import typing as t

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
    timespan_seconds,
    utc_iso,
)

if t.TYPE_CHECKING:
    import requests

#: each request's `end` reaches this far past the next window's `start`, so a
#: session exactly on a boundary is selected whether the server compares
#: inclusively or strictly ("after start", "before end")
BOUNDARY_OVERLAP = dt.timedelta(seconds=1)
#: time spans of the document, each also emitted in seconds
DURATION_FIELDS = (
    ("duration", "durationSeconds"),
    ("idleTime", "idleTimeSeconds"),
    ("productivityTime", "productivityTimeSeconds"),
)
DATETIME_FIELDS = ("loginDate", "logoutDate")
MAX_LOGGED_BAD_VALUES = 10


class Window(t.NamedTuple):
    """A time window ``[start, end)`` of the sync."""

    start: dt.datetime
    end: dt.datetime


class SessionPage(t.NamedTuple):
    """One request: a window and a page index within it."""

    window: Window
    page_index: int


class WindowPageIndexPaginator(BaseAPIPaginator[SessionPage]):
    """``pageIndex`` from 0 within each time window, then the next window.

    A window's pages are complete when they cover its ``totalCount`` or one
    comes back short (fewer than ``sessionCount`` sessions).
    """

    def __init__(self, first: dt.datetime, last: dt.datetime, window: dt.timedelta, page_size: int) -> None:
        self.last = last
        self.window = window
        self.page_size = page_size
        super().__init__(SessionPage(self.window_from(first), 0))

    def window_from(self, start: dt.datetime) -> Window:
        return Window(start, min(start + self.window, self.last))

    def request_end(self, window: Window) -> dt.datetime:
        """The `end` sent for a window: one overlap past it, but never past the last."""
        return min(window.end + BOUNDARY_OVERLAP, self.last)

    def is_last_page(self, response: requests.Response) -> bool:
        payload = page_of(response)
        received = len(payload["sessions"])
        covered = (self.current_value.page_index + 1) * self.page_size
        return received < self.page_size or covered >= payload["totalCount"]

    def short_of_total(self, response: requests.Response) -> int:
        """How many sessions ``totalCount`` promised beyond a short last page
        (0 when the pages account for it)."""
        payload = page_of(response)
        received = len(payload["sessions"])
        if received >= self.page_size:
            return 0
        return max(payload["totalCount"] - self.current_value.page_index * self.page_size - received, 0)

    def get_next(self, response: requests.Response) -> SessionPage | None:
        current = self.current_value
        if not self.is_last_page(response):
            return SessionPage(current.window, current.page_index + 1)
        if current.window.end >= self.last:
            return None
        return SessionPage(self.window_from(current.window.end), 0)

    def has_more(self, response: requests.Response) -> bool:
        return self.get_next(response) is not None

    def continue_if_empty(self, response: requests.Response) -> bool:
        return self.has_more(response)  # an empty window is no reason to stop


class SessionsStream(EkranStream):
    """Every session with activity in the synced period.

    The period runs from the bookmark (less ``lookback_hours``) or
    ``start_date`` to ``end_date`` or the time the sync started, and is
    requested in windows of ``window_hours``. The API selects the sessions
    "started or finished" within a window, so a session that spans window
    boundaries is emitted once per window it touches; targets upsert it by
    ``sessionId``.

    The bookmark (``replication_key_value``, a time) is written after each
    complete window: it is the end of that window, except that it never
    moves past the ``loginDate`` of the oldest session seen still open (no
    ``logoutDate``) in this sync, so that the next sync reads that session
    again and gets it once it has closed. Sessions that logged in more than
    ``open_session_hold_hours`` before the end of the period no longer hold
    it (a client that never reported a logout must not pin the bookmark).
    """

    name = "sessions"
    default_path = "/ekranapi/sessions"
    http_method = "POST"
    primary_keys = ("sessionId",)
    replication_key = "loginDate"
    #: the bookmark only moves at window ends (see `_increment_stream_state`),
    #: so it is always a resumable point ...
    is_sorted = True
    #: ... and it may step back, to an open session or into the lookback
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
        self._paginator: WindowPageIndexPaginator | None = None
        self._period: Window | None = None
        self._oldest_open: dt.datetime | None = None
        self._resumed_from: dt.datetime | None = None
        self._bookmark: dt.datetime | None = None
        self._bad_values_logged = 0

    # ------------------------------------------------------------- settings
    @property
    def page_size(self) -> int:
        return int(self.config.get("page_size") or MAX_SESSION_COUNT)

    @property
    def window(self) -> dt.timedelta:
        return dt.timedelta(hours=float(self.config.get("window_hours", 24)))

    @property
    def lookback(self) -> dt.timedelta:
        return dt.timedelta(hours=float(self.config.get("lookback_hours", 1)))

    @property
    def open_session_hold(self) -> dt.timedelta:
        return dt.timedelta(hours=float(self.config.get("open_session_hold_hours", 24)))

    # --------------------------------------------------------------- period
    def sync_period(self, context: t.Mapping[str, t.Any] | None) -> Window:
        """From the bookmark less the lookback (never before start_date), or
        from start_date, to end_date or now; whole seconds, UTC."""
        now = dt.datetime.now(UTC).replace(microsecond=0)
        config_start = config_start_date(self.config)
        last = now
        if self.config.get("end_date"):
            last = min(parse_datetime(self.config["end_date"]) or now, now)
        start = self.get_starting_timestamp(context) or config_start
        if self.get_context_state(context).get("replication_key_value"):
            start = max(start - self.lookback, config_start)
        return Window(start.astimezone(UTC).replace(microsecond=0), last)

    def get_records(self, context: t.Mapping[str, t.Any] | None) -> t.Iterable[dict]:
        self._period = self.sync_period(context)
        self._oldest_open = None
        self._resumed_from = parse_datetime(self.get_context_state(context).get("replication_key_value"))
        if self._period.start >= self._period.end:
            self.logger.info("sessions: nothing to sync, the period %s to %s is empty", *self._period)
            return ()
        self.logger.info(
            "sessions: requesting %s to %s in windows of %s, %d sessions per page",
            self._period.start.isoformat(), self._period.end.isoformat(), self.window, self.page_size,
        )
        return self.request_records(context)

    def get_new_paginator(self) -> WindowPageIndexPaginator:
        assert self._period is not None
        self._paginator = WindowPageIndexPaginator(
            self._period.start, self._period.end, self.window, self.page_size
        )
        return self._paginator

    # -------------------------------------------------------------- request
    def get_url_params(self, context: t.Any, next_page_token: t.Any) -> dict:
        return {}

    def prepare_request_payload(self, context: t.Any, next_page_token: SessionPage | None) -> dict:
        assert self._paginator is not None
        page = next_page_token or self._paginator.current_value
        return {
            "start": _api_time(page.window.start),
            "end": _api_time(self._paginator.request_end(page.window)),
            "sessionCount": self.page_size,
            "pageIndex": page.page_index,
        }

    # -------------------------------------------------------------- records
    def parse_response(self, response: requests.Response) -> t.Iterable[dict]:
        assert self._paginator is not None
        page = self._paginator.current_value
        rows = page_of(response)["sessions"]
        open_logins = []
        for index, row in enumerate(rows):
            if row.__class__ is not dict or row.get("sessionId") is None:
                raise EkranAPIError(
                    f"Ekran answered POST {self.path} (window {page.window.start.isoformat()}, "
                    f"pageIndex {page.page_index}) with sessions[{index}] that is not a session "
                    f"with a sessionId: {str(row)[:200]!r}"
                )
            if is_unset_date(row.get("logoutDate")):
                open_logins.append(row.get("loginDate"))
        yield from rows
        # Reached once every session of this page has been written.
        self._hold_for_open_sessions(open_logins)
        if self._paginator.is_last_page(response):
            missing = self._paginator.short_of_total(response)
            if missing:
                self.logger.warning(
                    "sessions: pageIndex %d of the window from %s held %d sessions, fewer than sessionCount=%d, "
                    "though totalCount=%d promised %d more; the window ends at a short page, as the API's "
                    "paging implies (does the server cap sessionCount lower?)",
                    page.page_index, page.window.start.isoformat(), len(rows), self.page_size,
                    page_of(response)["totalCount"], missing,
                )
            self._window_complete(page.window)

    def post_process(self, row: dict, context: t.Mapping[str, t.Any] | None = None) -> dict | None:
        """Date-times in UTC, each time span also in seconds (null where it
        does not parse), undocumented fields into ``extra``."""
        get = row.get
        for field in DATETIME_FIELDS:
            raw = get(field)
            if raw is None:
                continue
            if is_unset_date(raw):  # an open session's logoutDate as .NET may write it
                row[field] = None
                continue
            value = row[field] = utc_iso(raw)
            if value is None:
                self._log_bad_value(row, field, raw, "not an ISO 8601 date-time; emitted as null")
                row["extra"] = {**(get("extra") or {}), f"{field}Raw": raw}
        for field, seconds_field in DURATION_FIELDS:
            raw = get(field)
            seconds = row[seconds_field] = timespan_seconds(raw)
            if seconds is None and raw is not None:
                if raw.__class__ is not str:
                    row[field] = str(raw)
                self._log_bad_value(row, field, raw, f"not a valid time span (h:mm:ss.fffffff); {seconds_field} is null")
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
    def _hold_for_open_sessions(self, logins: list[t.Any]) -> None:
        """Remember the oldest open session that still holds the bookmark."""
        if not logins or self.open_session_hold <= dt.timedelta(0):
            return
        assert self._period is not None
        not_before = self._period.end - self.open_session_hold
        for raw in logins:
            login = parse_datetime(raw)
            if login is None or login < not_before:
                continue
            if self._oldest_open is None or login < self._oldest_open:
                self._oldest_open = login

    def _window_complete(self, window: Window) -> None:
        """Every page of ``window`` is written: move the bookmark and say so.

        Windows re-read in the lookback do not move it back: all before the
        bookmark this sync started from was complete already.
        """
        bookmark = window.end
        if self._resumed_from is not None and self._resumed_from > bookmark:
            bookmark = self._resumed_from
        if self._oldest_open is not None and self._oldest_open < bookmark:
            bookmark = self._oldest_open.replace(microsecond=0)
        if bookmark == self._bookmark:
            return
        self._bookmark = bookmark
        self.state_manager.increment_state(
            {self.replication_key: bookmark.isoformat()},
            context=self.context,
            replication_key=self.replication_key,
        )
        self.state_manager.is_flushed = False
        self._write_state_message()

    def _increment_stream_state(self, latest_record: dict, *, context: t.Any = None) -> None:
        """Records do not move the bookmark: windows do (`_window_complete`).

        singer-sdk would otherwise set it to each record's loginDate, which
        says nothing about which windows are complete.
        """


def _api_time(value: dt.datetime) -> str:
    """A time as the document's examples write it ("2021-04-01T12:00:00"), in UTC."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S")


STREAM_TYPES = (SessionsStream,)
