"""The reports as streams.

Windowed reports (sessions, listing, surveys, summary, team activity, Jump
Items, Vault) are asked one window at a time (``<end|start>_time`` plus a
``duration`` in seconds). Rows inside a window come in the appliance's order,
not sorted by time, so the bookmark is the window: while a window is being
read it stays at the window's start, and moves to its end once the whole
window has been read (a STATE message is written then). An interrupted sync
re-reads at most one window.

The end_time windows hold only sessions that have ended; a session that is
still running, or that closed abnormally, has an empty ``<end_time>`` and
never shows there. So the session reports also walk, each sync, the sessions
that started since the last such pass (and at least ``unended_session_days``
back) and emit those that have not ended (see ``SessionReportStream``).
"""

from __future__ import annotations

import datetime as dt
import time
import typing as t

from singer_sdk import typing as th
from typing_extensions import override

from tap_beyondtrust import xmlrows as xr
from tap_beyondtrust._sdk import RecordBookmarks, increment_state, write_state
from tap_beyondtrust.archives import ARCHIVE_CHILD_STREAMS, EventArchivesStream
from tap_beyondtrust.client import (
    BeyondTrustAPIError,
    BeyondTrustStream,
    fetch_rows,
    iter_elements,
    parse_when,
    period_end,
    to_epoch,
    unix_iso,
)
from tap_beyondtrust.feeds import FedStream
from tap_beyondtrust.state import STATE_CHILD_STREAMS, StateArchivesStream
from tap_beyondtrust.windows import WindowPaginator, first_instant, make_windows

DAY = 86400
#: the keys of a stream's state that hold its bookmark
BOOKMARK_KEYS = ("replication_key", "replication_key_value")
#: state key of the unended-session pass: sessions started before it have been checked
UNENDED_KEY = "unended_checked_to"
LSIDS_PER_REQUEST = 100

# ------------------------------------------------------------------ schema parts
ANY_OBJECT = th.ObjectType(additional_properties=True)
EXTRA = th.Property("extra", ANY_OBJECT,
                    description="Elements and attributes the document does not name, kept as JSON.")
GENERIC_ITEM = th.CustomType({"type": ["object", "string", "array", "null"]})


def entity_type(*ids: str, text_attrs: tuple[str, ...] = ()) -> th.ObjectType:
    return th.ObjectType(th.Property("name", th.StringType),
                         *(th.Property(i, th.IntegerType) for i in ids),
                         *(th.Property(a, th.StringType) for a in text_attrs),
                         additional_properties=True)


CUSTOMER = th.ObjectType(
    th.Property("gsnumber", th.IntegerType), th.Property("username", th.StringType),
    th.Property("public_ip", th.StringType), th.Property("private_ip", th.StringType),
    th.Property("hostname", th.StringType), th.Property("os", th.StringType),
    th.Property("primary_cust", th.IntegerType),
    th.Property("info", th.ObjectType(
        *(th.Property(n, th.StringType) for n in ("name", "company", "company_code", "issue", "details")),
        additional_properties=True)),
    EXTRA,
)
REPRESENTATIVE = th.ObjectType(
    th.Property("gsnumber", th.IntegerType), th.Property("id", th.IntegerType),
    *(th.Property(n, th.StringType) for n in ("username", "display_name", "public_display_name",
                                               "private_display_name", "public_ip", "private_ip",
                                               "hostname", "os")),
    *(th.Property(n, th.IntegerType) for n in ("display_number", "session_owner", "primary_rep",
                                                "seconds_involved", "invited")),
    EXTRA,
)
TEAM = th.ObjectType(th.Property("id", th.IntegerType), th.Property("name", th.StringType),
                     th.Property("primary_team", th.IntegerType))
RECORDING = th.ObjectType(th.Property("instance", th.IntegerType), th.Property("download_url", th.StringType),
                          th.Property("view_url", th.StringType), additional_properties=True)
FILE = th.ObjectType(th.Property("name", th.StringType), th.Property("size", th.IntegerType))
DATA_VALUES = th.ObjectType(additional_properties=True)
WINDOW_PROPS = (
    th.Property("window_start", th.DateTimeType, description="Start of the report window this row came from (UTC)."),
    th.Property("window_end", th.DateTimeType, description="End (exclusive) of that window; the bookmark."),
)


# ------------------------------------------------------------------ windowed base
class Window(t.NamedTuple):
    """``[lo, hi)`` in UNIX seconds: one request's period, the paginator's token."""

    lo: int
    hi: int


def window_range(config: t.Mapping[str, t.Any], bookmark: str | None, now: int) -> tuple[int, int]:
    """What a windowed stream reads, ``[lo, hi)`` in UNIX seconds, for a sync
    that starts at ``now``: from the bookmark (less lookback_seconds, in case
    the appliance's clock runs behind ours; never before start_date), else
    from start_date (default: 30 days before today); up to ``now`` or end_date."""
    if bookmark:
        lo = to_epoch(parse_when(bookmark))
        if config.get("start_date"):
            lo = max(lo, to_epoch(parse_when(config["start_date"])))
        lo -= int(config["lookback_seconds"])
    else:
        lo = to_epoch(first_instant(config, now))
    return lo, period_end(config, now)


class WindowedStream(RecordBookmarks, BeyondTrustStream):
    """A report asked in ``[lo, lo + duration)`` windows of UNIX seconds.

    The windows are the paginator's tokens (``get_new_paginator(context)``):
    computed once, from the bookmark the state holds when the stream starts,
    the config, and the sync's start (``started_at``, taken when the stream is
    built; windows end there or at end_date). ``report_params(context, token)``
    depends on nothing else. The bookmark is the window: it moves to a
    window's end once the window has been read whole (a STATE message then),
    and stays at the window's start while it is read (see ``hold``)."""

    window_param: t.ClassVar[str] = "end_time"
    #: the document's optional filters of this report: setting -> request parameter (sent only when set)
    filters: t.ClassVar[dict[str, str]] = {}
    align: t.ClassVar[int] = 0  # seconds windows are aligned to (and the bookmark floored to)
    fixed_window: t.ClassVar[int] = 0  # seconds; 0: the window_days setting
    is_sorted = True
    check_sorted = False  # the bookmark is the window (see module doc)
    #: STATE messages only between windows: singer-sdk's every-N-records one
    #: would carry a bookmark inside the window being read
    STATE_MSG_FREQUENCY = 1 << 62

    def __init__(self, *args: t.Any, **kwargs: t.Any) -> None:
        super().__init__(*args, **kwargs)
        #: the sync's start: what it reads ends here (or at end_date)
        self.started_at = int(time.time())

    @property
    def end(self) -> int:
        return period_end(self.config, self.started_at)

    def window_size(self) -> int:
        return self.fixed_window or int(self.config["window_days"]) * DAY

    def windows(self, context: t.Any) -> list[Window]:
        state = self.get_context_state(context)
        bookmark = state.get("replication_key_value") if state.get("replication_key") == self.replication_key \
            else None
        lo, hi = window_range(self.config, bookmark, self.started_at)
        return [Window(*w) for w in make_windows(lo, hi, self.window_size(), align=self.align)]

    def window_tokens(self, window: Window) -> list[t.Any]:
        """The requests of one window (their tokens, each with ``lo`` and ``hi``)."""
        return [window]

    @override
    def get_new_paginator(self, context: t.Any = None) -> WindowPaginator:
        return WindowPaginator([token for window in self.windows(context) for token in self.window_tokens(window)])

    @override
    def request_records(self, context: t.Any) -> t.Iterable[dict]:
        paginator = self.get_new_paginator(context)
        while not paginator.finished:
            token = paginator.current_value
            yield from self.hold(context, self.window_start(token.lo), self.read_report(context, token))
            following = paginator.next_value
            if following is None or (following.lo, following.hi) != (token.lo, token.hi):
                # the window is read whole: the bookmark moves to its end, and says so
                increment_state(self, {str(self.replication_key): unix_iso(token.hi)}, context)
                write_state(self)
            paginator.advance(None)  # type: ignore[arg-type]

    def hold(self, context: t.Any, bookmark: t.Mapping[str, t.Any], records: t.Iterable[dict]) -> t.Iterator[dict]:
        """``records``, with the bookmark kept as ``bookmark`` gives it (its
        replication_key and replication_key_value; a key it lacks stays absent)
        while they are read: singer-sdk advances it to each record's value (it
        has no public hook for a bookmark that is not a record's), and rows
        inside a window are not sorted. It is put back as soon as the SDK hands
        control back, before the next row is read."""
        if not self.selected:  # the SDK advances nothing
            yield from records
            return
        state = self.get_context_state(context)
        absent = [key for key in BOOKMARK_KEYS if key not in bookmark]
        for record in records:
            yield record
            state.update(bookmark)
            for key in absent:
                state.pop(key, None)

    @override
    def record_moves_bookmark(self, record: dict, context: t.Any) -> bool:
        """A row without its replication key's value (a session still open, or
        closed abnormally, has no ``end_time``) is left out of singer-sdk's
        step, which would do nothing for it but log the warning "New
        replication value is null", once for every such row of every sync."""
        return record.get(self.replication_key) is not None

    def window_start(self, lo: int) -> dict[str, t.Any]:
        """The bookmark while the window that starts at ``lo`` is read."""
        return {"replication_key": self.replication_key, "replication_key_value": unix_iso(lo)}

    def extra_params(self, context: t.Any) -> dict:
        return self.filter_params()

    def filter_params(self) -> dict:
        config = self.config
        return {param: config[setting] for setting, param in self.filters.items()
                if config.get(setting) is not None}

    @override
    def report_params(self, context: t.Any, window: t.Any) -> dict:
        lo, hi = window
        return {"generate_report": self.report, self.window_param: lo, "duration": hi - lo,
                **self.extra_params(context)}

    def window_records(self, response: t.Any, window: t.Any, tag: str, list_tag: str,
                       build: t.Callable[[t.Any], dict]) -> t.Iterator[dict]:
        """One record per ``tag`` element of the answer, with the window's fields."""
        fields = _window_fields(window)
        for el in iter_elements(response, (tag,), self.report, list_tag):
            record = build(el)
            record.update(fields)
            yield record


def _window_fields(window: t.Any) -> dict:
    return {"window_start": unix_iso(window[0]), "window_end": unix_iso(window[1])}


class _Occurrences:
    """Content keys for rows without an id: a digest, plus the how-manyth
    identical row of the answer it is (so true repeats are kept). ``stable``
    gives the part of a row that is digested: names the appliance shows as they
    are now, not as they were (a team's, a Jump Group's), are left out, so that
    a rename does not give events read again new keys."""

    def __init__(self, stable: t.Callable[[dict], dict] | None = None) -> None:
        self.seen: dict[str, int] = {}
        self.stable = stable

    def key(self, record: dict) -> str:
        digest = xr.content_key(self.stable(record) if self.stable else record)
        n = self.seen.get(digest, 0)
        self.seen[digest] = n + 1
        return f"{digest}-{n}"


class SessionIds(t.NamedTuple):
    """A request for the sessions named (``lsids``), in place of a window."""

    lsids: str


class StartedWindow(t.NamedTuple):
    """A request for the sessions started in ``[lo, hi)`` (``start_time``), of which
    those not ended are kept: the unended pass when ``limit`` is set, which
    ``lsids`` requests ignore (the document)."""

    lo: int
    hi: int


class SessionReportStream(WindowedStream):
    """A session report: the sessions that ended, by end_time windows (the
    bookmark), then those that have not ended.

    The document: ``end_time`` returns "only closed sessions", and a session's
    ``<end_time>`` "will be empty for sessions which are still in progress ...
    or which closed abnormally", so those never reach an end_time window. Each
    sync therefore also looks at the sessions that started from the last such
    pass (``unended_checked_to`` in the state; the whole range from start_date
    on the first sync), and at least ``unended_session_days`` back: the
    SupportSessionListing of the sessions that ended since then is read once,
    then that of the sessions started, one window at a time; those not among
    the ended ones are emitted (keyed by lsid, so later reads upsert them). The
    sessions that ended come through the end_time windows only.
    """

    @override
    def request_records(self, context: t.Any) -> t.Iterable[dict]:
        yield from super().request_records(context)
        yield from self.unended_records(context)

    def unended_range(self, context: t.Any) -> tuple[int, int] | None:
        return unended_range(self.config, self.get_context_state(context).get(UNENDED_KEY), self.started_at)

    def unended_windows(self, context: t.Any) -> list[StartedWindow]:
        """The start_time windows of the unended pass."""
        span = self.unended_range(context)
        return [] if span is None else [StartedWindow(*w) for w in make_windows(*span, self.window_size())]

    def unended_records(self, context: t.Any) -> t.Iterator[dict]:
        windows = self.unended_windows(context)
        if not windows:
            return
        ended = set(fetch_rows(self, context, ended_since_params(windows[0].lo),
                               ("session_summary",), "session_summary_list", _lsid_of))
        state = self.get_context_state(context)
        # these rows are not in the windows: the bookmark stays as the windows left it
        bookmark = {key: state[key] for key in BOOKMARK_KEYS if key in state}
        for window in windows:
            started = fetch_rows(
                self, context, started_params(window), ("session_summary",), "session_summary_list",
                lambda el: None if el.get("lsid") in ended else xr.listing_record(el))
            listed = [row for row in started if row and row["lsid"]]
            yield from self.hold(context, bookmark, self.unended_rows(context, window, listed))
            state[UNENDED_KEY] = unix_iso(window.hi)
            self.state_manager.is_flushed = False  # a change to the state that no record made
            write_state(self)

    def unended_rows(self, context: t.Any, window: StartedWindow, listed: list[dict]) -> t.Iterator[dict]:
        """Records of the sessions of ``window`` that had not ended (their listing rows given)."""
        raise NotImplementedError


def unended_range(config: t.Mapping[str, t.Any], checked: str | None, now: int) -> tuple[int, int] | None:
    """The sessions' start times the unended pass looks at, for a sync that
    starts at ``now``: from the last pass (``checked``, less lookback_seconds)
    and at least unended_session_days back, never before start_date; on the
    first sync, from start_date. None: nothing to look at."""
    hi = period_end(config, now)
    start = to_epoch(first_instant(config, now))
    if checked:
        back = hi - int(config["unended_session_days"]) * DAY
        lo = max(min(back, to_epoch(parse_when(checked)) - int(config["lookback_seconds"])), start)
    else:
        lo = start
    return (lo, hi) if lo < hi else None


def ended_since_params(lo: int) -> dict[str, t.Any]:
    """SupportSessionListing of the sessions that ended from ``lo`` on (duration 0: up to now)."""
    return {"generate_report": "SupportSessionListing", "end_time": lo, "duration": 0}


def started_params(window: StartedWindow) -> dict[str, t.Any]:
    """SupportSessionListing of the sessions started in a window."""
    return {"generate_report": "SupportSessionListing", "start_time": window.lo, "duration": window.hi - window.lo}


def _lsid_of(el: t.Any) -> str | None:
    return el.get("lsid")


# ------------------------------------------------------------------ SupportSession
SESSION_SCHEMA = th.PropertiesList(
    th.Property("lsid", th.StringType, required=True, description="Session id (the lsid attribute)."),
    th.Property("session_type", th.StringType),
    th.Property("lseq", th.IntegerType),
    th.Property("start_time", th.DateTimeType),
    th.Property("end_time", th.DateTimeType),
    th.Property("duration", th.StringType, description="HH:MM:SS as sent."),
    th.Property("duration_seconds", th.IntegerType),
    th.Property("public_site", entity_type("id")),
    th.Property("jumpoint", entity_type("id")),
    th.Property("external_key", th.StringType),
    th.Property("custom_attributes", th.ArrayType(th.ObjectType(
        th.Property("display_name", th.StringType), th.Property("code_name", th.StringType),
        th.Property("value", th.StringType)))),
    th.Property("session_chat_view_url", th.StringType),
    th.Property("session_chat_download_url", th.StringType),
    th.Property("session_recording_view_url", th.StringType),
    th.Property("session_recording_download_url", th.StringType),
    th.Property("show_my_screen_recordings", th.ArrayType(RECORDING)),
    th.Property("command_shell_recordings", th.ArrayType(RECORDING)),
    th.Property("file_transfer_count", th.IntegerType),
    th.Property("file_move_count", th.IntegerType),
    th.Property("file_delete_count", th.IntegerType),
    th.Property("primary_customer", entity_type("gsnumber")),
    th.Property("primary_rep", entity_type("gsnumber", "id")),
    th.Property("primary_team", entity_type("id")),
    th.Property("customers", th.ArrayType(CUSTOMER), description="customer_list"),
    th.Property("representatives", th.ArrayType(REPRESENTATIVE), description="rep_list"),
    th.Property("teams", th.ArrayType(TEAM), description="team_list"),
    th.Property("customer_exit_surveys", th.ArrayType(GENERIC_ITEM), description="cust_survey_list"),
    th.Property("rep_exit_surveys", th.ArrayType(GENERIC_ITEM), description="rep_survey_list"),
    th.Property("files", th.ArrayType(th.ObjectType(
        th.Property("name", th.StringType), th.Property("size", th.IntegerType),
        th.Property("event_type", th.StringType), th.Property("timestamp", th.DateTimeType))),
        description="Files transferred, from the session's events."),
    EXTRA,
).to_dict()


class SupportSessionsStream(SessionReportStream):
    """SupportSession: one record per session, once it has ended, and each
    sync while it has no end (see SessionReportStream; those are asked by
    ``lsids``). The same answer feeds support_session_events (its child), so
    the report is downloaded once."""

    name = "support_sessions"
    report = "SupportSession"
    filters: t.ClassVar[dict[str, str]] = {"support_session_limit": "limit"}
    primary_keys = ("lsid",)
    replication_key = "end_time"
    schema = SESSION_SCHEMA

    def __init__(self, *args: t.Any, **kwargs: t.Any) -> None:
        super().__init__(*args, **kwargs)
        self._events: FedStream | None = None

    @override
    def request_records(self, context: t.Any) -> t.Iterable[dict]:
        self._events = next((s for s in self.child_streams if s.selected and isinstance(s, FedStream)), None)
        if self._events is not None:
            self._events.open_feed()
        yield from super().request_records(context)

    @override
    def generate_child_contexts(self, record: dict, context: t.Any) -> t.Iterable[dict]:
        return iter(())  # the events are handed over in post_process, not synced per session

    @override
    def unended_rows(self, context: t.Any, window: StartedWindow, listed: list[dict]) -> t.Iterator[dict]:
        if not listed:
            return
        if self.filter_params():  # limit is ignored with lsids: the window's started sessions, limited
            yield from self.read_report(context, window)
            return
        lsids = [row["lsid"] for row in listed]
        for k in range(0, len(lsids), LSIDS_PER_REQUEST):
            yield from self.read_report(context, SessionIds(",".join(lsids[k:k + LSIDS_PER_REQUEST])))

    @override
    def report_params(self, context: t.Any, window: t.Any) -> dict:
        if isinstance(window, SessionIds):
            return {"generate_report": self.report, "lsids": window.lsids}
        if isinstance(window, StartedWindow):
            return {"generate_report": self.report, "start_time": window.lo, "duration": window.hi - window.lo,
                    **self.filter_params()}
        return super().report_params(context, window)

    @override
    def rows(self, response: t.Any, context: t.Any, window: t.Any) -> t.Iterator[dict]:
        with_events = self._events is not None
        # one that ended since comes via end_time windows
        unended_only = isinstance(window, (SessionIds, StartedWindow))
        for el in iter_elements(response, ("session",), self.report, "session_list"):
            if unended_only and _has_ended(el):
                continue
            record = xr.session_record(el)
            if with_events:
                record[EVENTS_KEY] = [
                    xr.session_event_record(ev, record["lsid"], seq, record.get("end_time"))
                    for seq, ev in enumerate(el.iterfind(SESSION_EVENTS_PATH), start=1)]
            yield record

    @override
    def post_process(self, row: dict, context: t.Any = None) -> dict | None:
        # runs once per record kept (never for rows skipped after a retried answer)
        events = row.pop(EVENTS_KEY, None)
        if events and self._events is not None:
            for event in events:
                self._events.feed(event)
        return row


EVENTS_KEY = "__session_events"
SESSION_EVENTS_PATH = f"{{{xr.NS}}}session_details/{{{xr.NS}}}event"
END_TIME_TAG = f"{{{xr.NS}}}end_time"


def _has_ended(el: t.Any) -> bool:
    end = el.find(END_TIME_TAG)
    return end is not None and bool(end.get("timestamp") or (end.text or "").strip())


EVENT_SCHEMA = th.PropertiesList(
    th.Property("lsid", th.StringType, required=True),
    th.Property("seq", th.IntegerType, required=True, description="Position of the event in session_details, from 1."),
    th.Property("session_end_time", th.DateTimeType),
    th.Property("timestamp", th.DateTimeType),
    th.Property("event_type", th.StringType),
    th.Property("performed_by", entity_type("gsnumber", text_attrs=("type",))),
    th.Property("destination", entity_type("gsnumber", text_attrs=("type",))),
    th.Property("body", th.StringType, description="The chat text; decoded from encoded_body (base64) where sent "
                                                   "so, NUL and invalid UTF-8 as U+FFFD."),
    th.Property("body_was_encoded", th.BooleanType),
    th.Property("encoded_body", th.StringType, description="The base64 encoded_body as sent (exact bytes)."),
    th.Property("filename", th.StringType),
    th.Property("filesize", th.IntegerType),
    th.Property("files", th.ArrayType(FILE)),
    th.Property("data", DATA_VALUES, description="<value name=.. value=..> pairs as an object."),
    th.Property("system_information", th.ArrayType(th.ObjectType(
        th.Property("name", th.StringType), th.Property("fields", th.ArrayType(th.StringType)),
        th.Property("rows", th.ArrayType(th.ArrayType(th.StringType)))))),
    EXTRA,
).to_dict()


class SupportSessionEventsStream(FedStream):
    """The session_details events of SupportSession, one record per event: fed by
    support_sessions from the same answer, kept incremental by its windows."""

    name = "support_session_events"
    parent_stream_type = SupportSessionsStream
    primary_keys = ("lsid", "seq")
    schema = EVENT_SCHEMA


class SupportSessionListingStream(SessionReportStream):
    """SupportSessionListing: sessions that ended, by end_time windows, and
    those that have not ended (see SessionReportStream)."""

    name = "support_session_listing"
    report = "SupportSessionListing"
    primary_keys = ("lsid",)
    replication_key = "window_end"
    schema = th.PropertiesList(
        th.Property("lsid", th.StringType, required=True),
        th.Property("lseq", th.IntegerType),
        th.Property("has_recording", th.IntegerType),
        th.Property("external_key", th.StringType),
        *WINDOW_PROPS, EXTRA,
    ).to_dict()

    @override
    def rows(self, response: t.Any, context: t.Any, window: t.Any) -> t.Iterator[dict]:
        return self.window_records(response, window, "session_summary", "session_summary_list", xr.listing_record)

    @override
    def unended_rows(self, context: t.Any, window: StartedWindow, listed: list[dict]) -> t.Iterator[dict]:
        fields = _window_fields(window)  # the start_time window they were listed in
        for record in listed:
            record.update(fields)
            yield record


#: "rep (to show representative summary statistics), team (...), or site (to show public site summary statistics)"
SUMMARY_REPORT_TYPES = ("rep", "team", "site")


class SupportSessionSummaryStream(WindowedStream):
    """Per rep, team and public site (report_type rep, team, site: a state
    partition each), one record per UTC day of sessions ended (today's is re-read)."""

    name = "support_session_summary"
    report = "SupportSessionSummary"
    primary_keys = ("report_type", "id", "period_start")
    replication_key = "period_start"
    align = DAY
    fixed_window = DAY
    schema = th.PropertiesList(
        th.Property("report_type", th.StringType, required=True),
        th.Property("id", th.IntegerType, required=True),
        th.Property("type", th.StringType),
        th.Property("period_start", th.DateTimeType, required=True, description="UTC day of the sessions' end."),
        th.Property("period_end", th.DateTimeType),
        th.Property("display_name", th.StringType),
        th.Property("total_sessions", th.IntegerType),
        th.Property("avg_sessions_per_weekday", th.NumberType),
        th.Property("avg_duration", th.StringType),
        th.Property("avg_duration_seconds", th.IntegerType),
        EXTRA,
    ).to_dict()

    @property
    @override
    def partitions(self) -> list[dict]:
        return [{"report_type": kind} for kind in SUMMARY_REPORT_TYPES]

    @override
    def extra_params(self, context: t.Any) -> dict:
        return {"report_type": context["report_type"]}

    @override
    def rows(self, response: t.Any, context: t.Any, window: t.Any) -> t.Iterator[dict]:
        period = {"report_type": context["report_type"], "period_start": unix_iso(window[0]),
                  "period_end": unix_iso(window[0] + DAY)}
        for el in iter_elements(response, ("summary",), self.report, "summary_list"):
            record = xr.summary_record(el)
            record.update(period)
            yield record


SURVEY_SCHEMA = th.PropertiesList(
    th.Property("lsid", th.StringType, required=True),
    th.Property("session_start_time", th.DateTimeType, description="The ts attribute."),
    th.Property("session_type", th.StringType),
    th.Property("public_site", entity_type("id")),
    th.Property("submitted_by", entity_type(text_attrs=("type",))),
    th.Property("primary_customer", entity_type("id")),
    th.Property("primary_rep", entity_type("id")),
    th.Property("primary_team", entity_type("id")),
    th.Property("customers", th.ArrayType(CUSTOMER)),
    th.Property("representatives", th.ArrayType(REPRESENTATIVE)),
    th.Property("teams", th.ArrayType(TEAM)),
    th.Property("rep_resolved", th.IntegerType),
    th.Property("questions", th.ArrayType(th.ObjectType(
        th.Property("id", th.IntegerType), th.Property("name", th.StringType), th.Property("type", th.StringType),
        th.Property("label", th.StringType), th.Property("report_header", th.StringType),
        th.Property("answers", th.ArrayType(th.StringType)), additional_properties=True))),
    *WINDOW_PROPS, EXTRA,
).to_dict()


class CustomerExitSurveysStream(WindowedStream):
    """SupportCustExitSurvey for sessions ended in each window.

    ``report_type=rep&id=all`` filters "according to the representative who
    last owned the session", and a session the customer closed before a
    representative accepted it has no such representative; so each window is
    also asked with ``report_type=team&id=all``, and the surveys the first
    answer left out are taken from the second."""

    name = "customer_exit_surveys"
    report = "SupportCustExitSurvey"
    primary_keys = ("lsid",)
    replication_key = "window_end"
    schema = SURVEY_SCHEMA

    filters: t.ClassVar[dict[str, str]] = {"survey_site_id": "site_id"}

    def survey_passes(self) -> list[tuple[str, str]]:
        """(report_type, id) asked per window: one representative or team when a setting names it."""
        if self.config.get("survey_rep_id") is not None:
            return [("rep", str(self.config["survey_rep_id"]))]
        if self.config.get("survey_team_id") is not None:
            return [("team", str(self.config["survey_team_id"]))]
        return [("rep", "all"), ("team", "all")]

    @override
    def window_tokens(self, window: Window) -> list[t.Any]:
        return [SurveyRequest(window.lo, window.hi, kind, who) for kind, who in self.survey_passes()]

    def __init__(self, *args: t.Any, **kwargs: t.Any) -> None:
        super().__init__(*args, **kwargs)
        #: the window being read, and the lsids its passes gave so far
        self._seen: tuple[tuple[int, int], set[str | None]] = ((0, 0), set())

    @override
    def read_report(self, context: t.Any, window: t.Any) -> t.Iterator[dict]:
        """A pass's surveys, but those an earlier pass of the same window gave."""
        if self._seen[0] != (window.lo, window.hi):
            self._seen = ((window.lo, window.hi), set())
        seen = self._seen[1]
        for record in super().read_report(context, window):
            if record["lsid"] not in seen:
                seen.add(record["lsid"])
                yield record

    @override
    def report_params(self, context: t.Any, window: t.Any) -> dict:
        return {"generate_report": self.report, self.window_param: window.lo, "duration": window.hi - window.lo,
                "report_type": window.report_type, "id": window.who, **self.filter_params()}

    @override
    def rows(self, response: t.Any, context: t.Any, window: t.Any) -> t.Iterator[dict]:
        return self.window_records(response, window, "exit_survey", "exit_survey_list", xr.survey_record)


class SurveyRequest(t.NamedTuple):
    """One pass of a survey window: ``report_type`` and ``id``."""

    lo: int
    hi: int
    report_type: str
    who: str


class RepExitSurveysStream(CustomerExitSurveysStream):
    name = "rep_exit_surveys"
    report = "SupportRepExitSurvey"


class SupportTeamsStream(WindowedStream):
    """SupportTeam's team_activity elements: one record per team (latest window wins)."""

    name = "support_teams"
    report = "SupportTeam"
    filters: t.ClassVar[dict[str, str]] = {"team_id": "team_id"}
    window_param: t.ClassVar[str] = "start_time"
    primary_keys = ("id",)
    replication_key = "window_end"
    schema = th.PropertiesList(
        th.Property("id", th.IntegerType, required=True),
        th.Property("name", th.StringType),
        th.Property("logged_in_representatives", th.ArrayType(REPRESENTATIVE),
                    description="Logged in before the window's first event."),
        *WINDOW_PROPS, EXTRA,
    ).to_dict()

    @override
    def rows(self, response: t.Any, context: t.Any, window: t.Any) -> t.Iterator[dict]:
        fields = _window_fields(window)
        for el in iter_elements(response, ("team_activity",), self.report, "team_activity_list"):
            record: dict[str, t.Any] = {"id": xr.as_int(el.get("id")), "name": el.get("name"),
                                        "logged_in_representatives": []}
            extra = {k: v for k, v in el.attrib.items() if k not in ("id", "name")}
            for c in el:
                name = xr.local(c)
                if name == "logged_in_representatives":
                    record[name] = xr.team_representatives(c)
                elif name and name != "events":
                    extra[name] = xr.generic(c)
            record["extra"] = extra or None
            record.update(fields)
            yield record


EVENT_ID = th.Property("event_id", th.StringType, required=True,
                       description="The API gives these events no id: a digest of the event (without the "
                                   "team's or Jump Group's current name) plus its repeat count.")


class EventReportStream(WindowedStream):
    """A report of events the API gives no id, by start_time windows: one
    record per ``event_tag`` element, keyed by ``event_id`` (see ``_Occurrences``)."""

    window_param: t.ClassVar[str] = "start_time"
    primary_keys = ("event_id",)
    replication_key = "timestamp"
    #: the row element and the answer's root
    event_tag: t.ClassVar[str] = ""
    list_tag: t.ClassVar[str] = ""

    def event_record(self, el: t.Any) -> dict | None:
        """The record of one event element (None: not an event of this stream)."""
        raise NotImplementedError

    def stable(self, record: dict) -> dict:
        """The part of a record its event_id digests: all of it, unless a name may change later."""
        return record

    @override
    def rows(self, response: t.Any, context: t.Any, window: t.Any) -> t.Iterator[dict]:
        keys = _Occurrences(self.stable)
        for el in iter_elements(response, (self.event_tag,), self.report, self.list_tag):
            record = self.event_record(el)
            if record is not None:
                record["event_id"] = keys.key(record)
                yield record


class TeamActivityStream(EventReportStream):
    """SupportTeam's events, one record per event."""

    name = "team_activity"
    report = "SupportTeam"
    filters: t.ClassVar[dict[str, str]] = {"team_id": "team_id"}
    event_tag = "event"
    list_tag = "team_activity_list"
    schema = th.PropertiesList(
        EVENT_ID,
        th.Property("team_id", th.IntegerType),
        th.Property("team_name", th.StringType),
        th.Property("timestamp", th.DateTimeType),
        th.Property("event_type", th.StringType),
        th.Property("performed_by", entity_type("gsnumber", text_attrs=("type",))),
        th.Property("destinations", th.ArrayType(entity_type("gsnumber"))),
        th.Property("files", th.ArrayType(FILE)),
        th.Property("data", DATA_VALUES),
        th.Property("body", th.StringType),
        th.Property("body_was_encoded", th.BooleanType),
        th.Property("encoded_body", th.StringType, description="The base64 encoded_body as sent (exact bytes)."),
        EXTRA,
    ).to_dict()

    @override
    def event_record(self, el: t.Any) -> dict | None:
        events = el.getparent()
        activity = events.getparent() if events is not None else None
        if activity is None or activity.tag != TEAM_ACTIVITY_TAG:
            return None
        return xr.team_event_record(el, xr.as_int(activity.get("id")), activity.get("name"))

    @override
    def stable(self, record: dict) -> dict:
        """The team's name "as it currently appears" (the document): its id stays."""
        return {k: v for k, v in record.items() if k != "team_name"}


TEAM_ACTIVITY_TAG = f"{{{xr.NS}}}team_activity"


class JumpItemsStream(EventReportStream):
    name = "jump_items"
    report = "JumpItem"
    filters: t.ClassVar[dict[str, str]] = {
        "jump_group": "jump_group", "jump_item": "jump_item", "jump_performed_by": "performed_by"}
    event_tag = "jump_item_event"
    list_tag = "jump_item_event_list"
    schema = th.PropertiesList(
        EVENT_ID,
        th.Property("timestamp", th.DateTimeType),
        th.Property("jump_item_id", th.IntegerType, description="<jump_item>"),
        th.Property("jump_item_name", th.StringType),
        th.Property("event_type", th.StringType),
        th.Property("jump_item_type", th.StringType),
        th.Property("jump_group", entity_type("id", text_attrs=("type",))),
        th.Property("performed_by", entity_type("id", text_attrs=("type",))),
        th.Property("data", th.StringType),
        EXTRA,
    ).to_dict()

    @override
    def event_record(self, el: t.Any) -> dict | None:
        return xr.jump_item_record(el)

    @override
    def stable(self, record: dict) -> dict:
        """A Jump Group's name (a personal one is its owner's display name): its type and id stay."""
        group = record.get("jump_group")
        if not group:
            return record
        return {**record, "jump_group": {k: v for k, v in group.items() if k != "name"}}


class VaultAccountActivityStream(EventReportStream):
    name = "vault_account_activity"
    report = "VaultAccountActivity"
    filters: t.ClassVar[dict[str, str]] = {"vault_limit": "limit"}
    event_tag = "vault_account_activity"
    list_tag = "vault_account_activity_list"
    schema = th.PropertiesList(
        EVENT_ID,
        th.Property("timestamp", th.DateTimeType),
        th.Property("event_type", th.StringType),
        th.Property("account_id", th.IntegerType, description="The Vault account's id (Account), when numeric."),
        th.Property("account", th.StringType, description="Account as sent (any case of the name), kept "
                                                          "whether or not it is numeric."),
        th.Property("account_name", th.StringType),
        th.Property("performed_by", entity_type("id", text_attrs=("type",))),
        th.Property("data", th.StringType),
        EXTRA,
    ).to_dict()

    @override
    def event_record(self, el: t.Any) -> dict | None:
        return xr.vault_record(el)


class LicenseUsageStream(BeyondTrustStream):
    """LicenseUsage grouped by license_group_by: one record per hour, day or
    month, holding its peak. The latest period is re-read each sync (its peak
    can still change) and upserted by its key."""

    name = "license_usage"
    report = "LicenseUsage"
    primary_keys = ("group_by", "period_start")
    replication_key = "period_start"
    is_sorted = True
    check_sorted = False
    schema = th.PropertiesList(
        th.Property("group_by", th.StringType, required=True),
        th.Property("period_start", th.DateTimeType, required=True,
                    description="Start of the hour/day/month the row covers (UTC): the datetime attribute "
                                "floored to group_by in the appliance's own UTC offset."),
        th.Property("timestamp", th.DateTimeType,
                    description="When the period's peak licence usage was logged (UTC)."),
        th.Property("datetime", th.StringType, description="The datetime attribute as sent (appliance offset)."),
        th.Property("license_counts", th.ArrayType(th.ObjectType(
            th.Property("license_type", th.StringType), th.Property("reason", th.StringType),
            th.Property("count", th.IntegerType)))),
        EXTRA,
    ).to_dict()

    def __init__(self, *args: t.Any, **kwargs: t.Any) -> None:
        super().__init__(*args, **kwargs)
        #: the sync's start: what it reads ends here (or at end_date)
        self.started_at = int(time.time())

    @property
    def group_by(self) -> str:
        return str(self.config["license_group_by"])

    @override
    def request_records(self, context: t.Any) -> t.Iterable[dict]:
        period = license_period(self.config, self.get_context_state(context).get("replication_key_value"),
                                self.started_at)
        if period is not None:
            yield from self.read_report(context, period)

    @override
    def report_params(self, context: t.Any, window: t.Any) -> dict:
        return {"generate_report": self.report, "start_time": window[0], "duration": window[1],
                "group_by": self.group_by}

    @override
    def rows(self, response: t.Any, context: t.Any, window: t.Any) -> t.Iterator[dict]:
        for el in iter_elements(response, ("license_time_interval",), self.report, "license_usage"):
            record = xr.license_interval_record(el, self.group_by)
            if record["period_start"] is None:
                raise BeyondTrustAPIError(
                    f"BeyondTrust {self.report} answered a license_time_interval without a usable time "
                    f"(timestamp={el.get('timestamp')!r}, datetime={el.get('datetime')!r})")
            yield record


class ArchiveListingStream(WindowedStream):
    """ArchiveListing, one request per UTC date; today's is re-read on the next sync."""

    name = "archive_listing"
    report = "ArchiveListing"
    primary_keys = ("date", "archive_type", "index")
    replication_key = "time"
    align = DAY
    fixed_window = DAY
    schema = th.PropertiesList(
        th.Property("date", th.StringType, required=True),
        th.Property("archive_type", th.StringType, required=True, description="state or event"),
        th.Property("index", th.IntegerType, required=True),
        th.Property("time", th.DateTimeType),
        th.Property("end_time", th.DateTimeType),
        th.Property("event_archive_index", th.IntegerType),
        EXTRA,
    ).to_dict()

    @override
    def report_params(self, context: t.Any, window: t.Any) -> dict:
        return {"generate_report": self.report, "date": _day(window[0])}

    @override
    def rows(self, response: t.Any, context: t.Any, window: t.Any) -> t.Iterator[dict]:
        date = _day(window[0])
        for el in iter_elements(response, ("state_archive", "event_archive"), self.report, "archives"):
            yield xr.archive_listing_record(el, date)


def license_period(config: t.Mapping[str, t.Any], bookmark: str | None, now: int) -> tuple[int, int] | None:
    """LicenseUsage's one request, ``(start_time, duration)``, for a sync that
    starts at ``now``: from the bookmark (the start of the latest period read:
    it is read again, whole), else from start_date floored to the period (the
    appliance's offset is not known yet: the first period may be partial); a
    duration of 0 (up to now) unless end_date is set. None: nothing to read."""
    if bookmark:
        lo = to_epoch(parse_when(bookmark))
    else:
        start = first_instant(config, now).astimezone(dt.timezone.utc).replace(minute=0, second=0, microsecond=0)
        if config["license_group_by"] in ("day", "month"):
            start = start.replace(hour=0)
        if config["license_group_by"] == "month":
            start = start.replace(day=1)
        lo = to_epoch(start)
    end = period_end(config, now)
    if lo >= end:
        return None
    return lo, (end - lo if config.get("end_date") else 0)


def _day(ts: int) -> str:
    return dt.datetime.fromtimestamp(ts, dt.timezone.utc).date().isoformat()


STREAM_TYPES: list[type] = [
    SupportSessionsStream,
    SupportSessionEventsStream,
    SupportSessionListingStream,
    SupportSessionSummaryStream,
    LicenseUsageStream,
    JumpItemsStream,
    SupportTeamsStream,
    TeamActivityStream,
    CustomerExitSurveysStream,
    RepExitSurveysStream,
    VaultAccountActivityStream,
    ArchiveListingStream,
    EventArchivesStream,
    *ARCHIVE_CHILD_STREAMS,
    StateArchivesStream,
    *STATE_CHILD_STREAMS,
]
