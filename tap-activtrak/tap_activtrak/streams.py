"""ActivTrak streams: the activity log and the two working-hours views."""

from __future__ import annotations

import datetime as dt
import json
import typing as t

from singer_sdk import typing as th
from singer_sdk.pagination import BaseAPIPaginator

from tap_activtrak.client import EXTRA, ActivTrakStream, local_day, payload_of

if t.TYPE_CHECKING:
    import requests

UTC = dt.timezone.utc


# --------------------------------------------------------------------- activity log
class CursorPaginator(BaseAPIPaginator[t.Optional[str]]):
    """The activity log's cursor: follow it until a page comes back empty
    (an empty page returns the cursor it was given)."""

    def has_more(self, response: requests.Response) -> bool:
        return bool(payload_of(response)["activity"])

    def get_next(self, response: requests.Response) -> str | None:
        return payload_of(response).get("cursor") or None


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

    def get_new_paginator(self) -> CursorPaginator:
        return CursorPaginator(start_value=self._saved_cursor())

    @property
    def _end_date(self) -> str | None:
        end = self.config.get("end_date")
        return str(end)[:10] if end else None

    def _saved_cursor(self) -> str | None:
        """The cursor to continue from.

        A cursor hands out entries in arrival order, not by date: one taken
        under an ``endDate`` has gone past every entry dated after that day.
        So a sync bounded by ``end_date`` keeps its cursor apart
        (``backfill_cursor``, with the end date it was taken under) and the
        unbounded cursor (``cursor``) is never replaced by it.
        """
        state = self.get_context_state(self.context)
        end = self._end_date
        if end is None:
            return state.get("cursor")
        backfill = state.get("backfill_cursor")
        if isinstance(backfill, dict) and backfill.get("end_date") == end:
            return backfill.get("cursor")
        return None

    def get_url_params(self, context: dict | None, next_page_token: str | None) -> dict[str, t.Any]:
        params: dict[str, t.Any] = {"pageSize": self.page_size, **self.entity_filter()}
        end_day = self.end_day
        if next_page_token:
            params["cursor"] = next_page_token
        else:
            # A bounded sync (a backfill) reads its own period from start_date;
            # an unbounded one without a cursor from its bookmark. Both are
            # the server's days: its clock is `timezone`.
            start = self.start_instant if end_day is not None else self.get_starting_timestamp(context)
            params["startDate"] = local_day(start, self.zone).isoformat()
        if end_day is not None:
            params["endDate"] = end_day.isoformat()
        return params

    def parse_response(self, response: requests.Response) -> t.Iterable[dict]:
        payload = payload_of(response)
        yield from payload["activity"]
        # Reached only once every record of this page has been written.
        if payload["activity"] and payload.get("cursor"):
            state = self.get_context_state(self.context)
            end = self._end_date
            if end is None:
                state["cursor"] = payload["cursor"]
            else:
                state["backfill_cursor"] = {"end_date": end, "cursor": payload["cursor"]}
            self.state_manager.is_flushed = False
            self._write_state_message()


# --------------------------------------------------------------------- working hours
class DayWindow(t.NamedTuple):
    first: dt.date
    page: int


class WindowPagePaginator(BaseAPIPaginator[DayWindow]):
    """Page numbers within day windows: pages 1..n of ``[first, first+days-1]``,
    then the next window, until ``last``."""

    def __init__(self, first: dt.date, last: dt.date, window_days: int, page_size: int) -> None:
        super().__init__(DayWindow(first, 1))
        self.last = last
        self.window_days = window_days
        self.page_size = page_size

    def window_end(self, window: DayWindow) -> dt.date:
        return min(window.first + dt.timedelta(days=self.window_days - 1), self.last)

    def has_more(self, response: requests.Response) -> bool:
        return self.get_next(response) is not None

    def continue_if_empty(self, response: requests.Response) -> bool:
        return True  # a day without rows is no reason to skip the days after it

    def get_next(self, response: requests.Response) -> DayWindow | None:
        payload = payload_of(response)
        current = self.current_value
        rows = payload["activity"]
        total = payload.get("total")
        if rows and isinstance(total, int) and current.page * self.page_size < total:
            return DayWindow(current.first, current.page + 1)
        following = self.window_end(current) + dt.timedelta(days=1)
        return DayWindow(following, 1) if following <= self.last else None


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
    def is_sorted(self) -> bool:  # type: ignore[override]
        # One-day windows hold one date each: rows arrive in date order and
        # the bookmark is resumable. Longer windows promise no order inside.
        return self.window_days == 1

    #: the lookback re-reads days before the bookmark, so it steps back at first
    check_sorted = False

    @property
    def window_days(self) -> int:
        return int(self.config.get("window_days", 1))

    def get_new_paginator(self) -> WindowPagePaginator:
        first, last = self.date_range(self.context)
        self.logger.info("Requesting %s from %s to %s in %d-day windows", self.name, first, last, self.window_days)
        self._paginator = WindowPagePaginator(first, last, self.window_days, self.page_size)
        return self._paginator

    def date_range(self, context: dict | None) -> tuple[dt.date, dt.date]:
        """The server's days to request (its clock is `timezone`): from the
        bookmark (less the lookback) or ``start_date``, to ``end_date`` or today."""
        zone = self.zone
        today = local_day(dt.datetime.now(UTC), zone)
        last = today
        if self.end_day is not None:
            last = min(self.end_day, today)
        start_value = self.get_starting_timestamp(context)
        start = local_day(start_value, zone) if start_value else today
        if self.get_context_state(context).get("replication_key_value"):
            if start > last:
                # a bookmark past end_date: a backfill run on the regular
                # state reads its own period, from start_date
                return min(self.start_date, last), last
            # lookback_days=2 re-reads the bookmark's day and the one before it
            lookback = int(self.config.get("lookback_days", 2))
            start = max(start - dt.timedelta(days=lookback - 1), self.start_date)
        return min(start, last), last

    def get_url_params(self, context: dict | None, next_page_token: DayWindow | None) -> dict[str, t.Any]:
        window = next_page_token or self._paginator.current_value
        return {
            "from": window.first.isoformat(),
            "to": self._paginator.window_end(window).isoformat(),
            "page": window.page,
            "pageSize": self.page_size,
            **self.entity_filter(),
        }

    def post_process(self, row: dict, context: dict | None = None) -> dict | None:
        row = super().post_process(row, context)
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
