"""ActivTrak streams: the activity log and the two working-hours views."""

from __future__ import annotations

import datetime as dt
import json
import typing as t
from functools import cached_property

from singer_sdk import typing as th
from singer_sdk.pagination import BaseAPIPaginator
from typing_extensions import override

from tap_activtrak._sdk import write_state
from tap_activtrak.client import EXTRA, ActivTrakStream, local_day, payload_of, utc_iso

if t.TYPE_CHECKING:
    import requests
    from singer_sdk.helpers.types import Context

UTC = dt.timezone.utc


# --------------------------------------------------------------------- activity log
class LogPage(t.NamedTuple):
    """One activity-log request: the first one of a sync from the server's
    day ``start_day``, every later one after the API's ``cursor``."""

    start_day: dt.date | None
    cursor: str | None


class CursorPaginator(BaseAPIPaginator[LogPage]):
    """The activity log's cursor: follow it until a page comes back empty
    (an empty page returns the cursor it was given)."""

    @override
    def has_more(self, response: requests.Response) -> bool:
        return bool(payload_of(response)["activity"])

    @override
    def continue_if_empty(self, response: requests.Response) -> bool:
        # A page whose entries are all at or after end_date's instant yields no
        # record, yet entries that arrived later can be dated before it: go on
        # (a page without any entry ends the sync in has_more).
        return True

    @override
    def get_next(self, response: requests.Response) -> LogPage | None:
        cursor = payload_of(response).get("cursor")
        return LogPage(None, cursor) if cursor else None


class ActivityLogStream(ActivTrakStream):
    """Every activity log entry, read with the API's cursor.

    The first sync asks for entries from ``start_date``; every page's cursor is
    saved in the stream's state (``cursor``) once that page's records are
    written, and later syncs continue from it: the cursor also hands out
    late-arriving entries whatever their date. A sync bounded by ``end_date``
    keeps its cursor apart (see ``_saved_cursor``).
    """

    name = "activity_log"
    default_path = "/reports/v2/activitylog"
    primary_keys = ("logId",)
    replication_key = "date"
    is_sorted = False  # late entries arrive with older dates
    datetime_fields = ("date",)

    schema = th.PropertiesList(
        th.Property("logId", th.IntegerType, required=True, description="Log entry id"),
        th.Property("productivity", th.IntegerType, description="Productivity status of the activity"),
        th.Property("popupAlarm", th.BooleanType),
        th.Property("emailAlarm", th.BooleanType),
        th.Property("externalNotificationAlarm", th.BooleanType),
        th.Property("terminate", th.BooleanType),
        th.Property("date", th.DateTimeType, description="When the activity happened (UTC)"),
        th.Property("computerId", th.IntegerType),
        th.Property("computer", th.StringType),
        th.Property("primaryDomain", th.StringType),
        th.Property("privateIp", th.StringType),
        th.Property("publicIp", th.StringType),
        th.Property("loginDomain", th.StringType),
        th.Property("user", th.StringType),
        th.Property("session", th.IntegerType),
        th.Property("duration", th.NumberType, description="Seconds"),
        th.Property("applicationId", th.IntegerType),
        th.Property("websiteId", th.IntegerType),
        th.Property("executable", th.StringType),
        th.Property("description", th.StringType),
        th.Property("url", th.StringType),
        th.Property(EXTRA, th.ObjectType(additional_properties=True),
                    description="Fields the API returned that the document does not name."),
    ).to_dict()

    @override
    def get_new_paginator(self) -> CursorPaginator:
        return CursorPaginator(self.first_page(self.context))

    @property
    def backfill_key(self) -> str | None:
        """What a bounded sync's cursor is kept under: ``end_date`` as set for
        a date, its UTC instant for a date-time; None for an unbounded sync."""
        end = self.config.get("end_date")
        if not end:
            return None
        text = str(end).strip()
        return text if len(text) == 10 else t.cast("dt.datetime", self.end_instant).isoformat()

    def saved_cursor(self, context: Context | None) -> str | None:
        """The cursor to continue from.

        A cursor hands out entries in arrival order, not by date: one taken
        under an ``endDate`` has gone past every entry dated after that day.
        So a sync bounded by ``end_date`` keeps its cursor apart
        (``backfill_cursor``, with the end it was taken under) and the
        unbounded cursor (``cursor``) is never replaced by it.
        """
        state = self.get_context_state(context)
        end = self.backfill_key
        if end is None:
            return state.get("cursor")
        backfill = state.get("backfill_cursor")
        if isinstance(backfill, dict) and backfill.get("end_date") == end:
            return backfill.get("cursor")
        return None

    def first_page(self, context: Context | None) -> LogPage:
        """The sync's first request, from the state and the config: after the
        saved cursor; without one, from ``start_date`` for a bounded sync (a
        backfill reads its own period) or from the bookmark. Both are the
        server's days: its clock is `timezone`."""
        cursor = self.saved_cursor(context)
        if cursor:
            return LogPage(None, cursor)
        start = self.start_instant if self.end_instant is not None else self.get_starting_timestamp(context)
        return LogPage(local_day(t.cast("dt.datetime", start), self.zone), None)

    @override
    def get_url_params(self, context: Context | None, next_page_token: LogPage | None) -> dict[str, t.Any]:
        page = next_page_token or self.first_page(context)
        params: dict[str, t.Any] = {"pageSize": self.page_size, **self.entity_filter()}
        if page.cursor:
            params["cursor"] = page.cursor
        else:
            params["startDate"] = t.cast("dt.date", page.start_day).isoformat()
        end_day = self.end_day
        if end_day is not None:
            params["endDate"] = end_day.isoformat()
        return params

    @override
    def parse_response(self, response: requests.Response) -> t.Iterable[dict]:
        payload = payload_of(response)
        rows = payload["activity"]
        end = self.end_instant
        if end is None:
            yield from rows
        else:  # the API's endDate is a whole day: the entries from end_date's instant on are not synced
            zone = self.zone
            for row in rows:
                date = utc_iso(row.get("date"), zone)
                if date is None or dt.datetime.fromisoformat(date) < end:
                    yield row
        # Reached only once every record of this page has been written.
        if rows and payload.get("cursor"):
            state = self.get_context_state(self.context)
            key = self.backfill_key
            if key is None:
                state["cursor"] = payload["cursor"]
            else:
                state["backfill_cursor"] = {"end_date": key, "cursor": payload["cursor"]}
            self.state_manager.is_flushed = False
            if not self.batching:  # in BATCH mode, singer-sdk writes the state after each batch is out
                write_state(self)

    @cached_property
    def batching(self) -> bool:
        return self.get_batch_config(self.config) is not None


# --------------------------------------------------------------------- working hours
class DayWindow(t.NamedTuple):
    """One working-hours request: page ``page`` of the days ``first`` to ``last``, inclusive."""

    first: dt.date
    last: dt.date
    page: int


class WindowPagePaginator(BaseAPIPaginator[DayWindow]):
    """Day windows of ``window_days`` from ``first`` to ``last`` (the server's
    days, inclusive), and the page numbers within each window."""

    def __init__(self, first: dt.date, last: dt.date, window_days: int, page_size: int) -> None:
        self.last = last
        self.window_days = window_days
        self.page_size = page_size
        super().__init__(self.window_from(first))

    def window_from(self, first: dt.date) -> DayWindow:
        """The first page of the window that starts on ``first``."""
        return DayWindow(first, min(first + dt.timedelta(days=self.window_days - 1), self.last), 1)

    def following(self, window: DayWindow) -> DayWindow | None:
        """The window after ``window``; None after the last one."""
        first = window.last + dt.timedelta(days=1)
        return self.window_from(first) if first <= self.last else None

    @override
    def has_more(self, response: requests.Response) -> bool:
        return self.get_next(response) is not None

    @override
    def continue_if_empty(self, response: requests.Response) -> bool:
        return True  # a day without rows is no reason to skip the days after it

    @override
    def get_next(self, response: requests.Response) -> DayWindow | None:
        payload = payload_of(response)
        current = self.current_value
        total = payload.get("total")
        if payload["activity"] and isinstance(total, int) and current.page * self.page_size < total:
            return current._replace(page=current.page + 1)
        return self.following(current)


TIME_SPLIT = th.ObjectType(
    th.Property("productive", th.NumberType),
    th.Property("unproductive", th.NumberType),
    th.Property("undefined", th.NumberType),
    th.Property("total", th.NumberType),
)


def _working_hours_schema(entity_id: str, entity_list: str) -> dict:
    return th.PropertiesList(
        th.Property("date", th.DateTimeType, required=True,
                    description="The day: its midnight on the server's clock (`timezone`), in UTC"),
        th.Property(entity_id, th.IntegerType),
        th.Property(f"{entity_list}_key", th.StringType, required=True,
                    description=f"The {entity_list} list joined by commas: part of the primary key"),
        # the document shows these lists empty ("groups": []): items of any type
        th.Property("groups", th.ArrayType(th.AnyType())),
        th.Property("firstActivity", th.DateTimeType),
        th.Property("lastActivity", th.DateTimeType),
        th.Property("lastActivityLog", th.DateTimeType),
        th.Property(entity_list, th.ArrayType(th.AnyType())),
        th.Property("activeTime", TIME_SPLIT, description="Seconds active"),
        th.Property("passiveTime", TIME_SPLIT, description="Seconds passive"),
        th.Property("totalTime", th.NumberType, description="Seconds"),
        th.Property(EXTRA, th.ObjectType(additional_properties=True),
                    description="Fields the API returned that the document does not name."),
    ).to_dict()


class WorkingHoursStream(ActivTrakStream):
    """A working-hours report, requested in day windows from the bookmark to
    today. The last ``lookback_days`` are re-read each sync because recent days
    keep changing; rows are upserted by their primary key."""

    replication_key = "date"
    datetime_fields = ("date", "firstActivity", "lastActivity", "lastActivityLog")
    #: the list field of this view, as the document names it
    entity_list = ""

    @property
    @override
    def is_sorted(self) -> bool:
        # One-day windows hold one date each: rows arrive in date order and
        # the bookmark is resumable. Longer windows promise no order inside.
        return self.window_days == 1

    #: the lookback re-reads days before the bookmark, so it steps back at first
    check_sorted = False

    @property
    def window_days(self) -> int:
        return int(self.config["window_days"])

    @override
    def get_new_paginator(self) -> WindowPagePaginator:
        paginator = self.paginator_for(self.context)
        self.logger.info("Requesting %s from %s to %s in %d-day windows",
                         self.name, paginator.current_value.first, paginator.last, self.window_days)
        return paginator

    def paginator_for(self, context: Context | None) -> WindowPagePaginator:
        """The windows of a sync, from the state and the config."""
        first, last = self.date_range(context)
        return WindowPagePaginator(first, last, self.window_days, self.page_size)

    def date_range(self, context: Context | None) -> tuple[dt.date, dt.date]:
        """The server's days to request (its clock is `timezone`): from the
        bookmark (less ``lookback_days``) or ``start_date``, to the last day
        that starts before ``end_date``, or to today."""
        zone = self.zone
        today = local_day(dt.datetime.now(UTC), zone)
        last = today if self.end_day is None else min(self.end_day, today)
        start_value = self.get_starting_timestamp(context)
        start = local_day(start_value, zone) if start_value else today
        if self.get_context_state(context).get("replication_key_value"):
            if start > last:
                # a bookmark past end_date: a backfill run on the regular
                # state reads its own period, from start_date
                return min(self.start_date, last), last
            # the bookmark's day is read again, and lookback_days before it
            start = max(start - dt.timedelta(days=int(self.config["lookback_days"])), self.start_date)
        return min(start, last), last

    @override
    def get_url_params(self, context: Context | None, next_page_token: DayWindow | None) -> dict[str, t.Any]:
        window = next_page_token or self.paginator_for(context).current_value
        return {
            "from": window.first.isoformat(),
            "to": window.last.isoformat(),
            "page": window.page,
            "pageSize": self.page_size,
            **self.entity_filter(),
        }

    @override
    def post_process(self, row: dict, context: Context | None = None) -> dict | None:
        row = t.cast("dict", super().post_process(row, context))
        row[f"{self.entity_list}_key"] = ",".join(
            item if isinstance(item, str) else json.dumps(item, sort_keys=True)
            for item in row.get(self.entity_list) or []
        )
        return row


class WorkingHoursUsersStream(WorkingHoursStream):
    name = "working_hours_users"
    default_path = "/reports/v2/workinghours/users"
    entity_list = "users"
    computed_fields = frozenset({"users_key"})
    primary_keys = ("date", "computerid", "users_key")
    schema = _working_hours_schema("computerid", "users")


class WorkingHoursComputersStream(WorkingHoursStream):
    name = "working_hours_computers"
    default_path = "/reports/v2/workinghours/computers"
    entity_list = "computers"
    computed_fields = frozenset({"computers_key"})
    primary_keys = ("date", "userid", "computers_key")
    schema = _working_hours_schema("userid", "computers")


STREAM_TYPES = (ActivityLogStream, WorkingHoursUsersStream, WorkingHoursComputersStream)
