"""Every Controlio report, declared as one table; the stream classes are built
from it. A new report is one row of ``REPORTS``.

The document gives no report fields. API-CONTRACT.md guarantees that rows carry
the ids their filters name and, for time-based rows, ``start_time``/``end_time``;
each row of the table declares those (and a few more that can be known), all
nullable, and every other field the API returns is kept in the ``extra`` object
column. Only primary-key fields are required, and a row lacking one is an
error (``ControlioStream.post_process``). A report whose rows have no
guaranteed natural key is keyed by ``row_key``, a digest of the row.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import typing as t
from functools import cached_property

from singer_sdk import typing as th
from singer_sdk.helpers.types import Context
from singer_sdk.pagination import BaseAPIPaginator, SinglePagePaginator
from typing_extensions import override

from tap_controlio.client import (
    EXTRA,
    ROW_KEY,
    ControlioAPIError,
    OffsetPaginator,
    PrevCursorPaginator,
    Window,
    WindowedStream,
    WindowPage,
    query_value,
    row_digest,
)
from tap_controlio.streams import ANY_ARRAY, ANY_OBJECT, ActivitiesStream, UsersStream

PARENTS = {"users": UsersStream, "activities": ActivitiesStream}

# Pagination styles
OFFSET = "offset"  # limit/offset, last page shorter than limit
PREV = "prev"  # prev=<start_time>,<user_id>,<computer_id> cursor
SINGLE = "single"  # one page, no paging parameters

# Date filter shapes
RANGE = "range"  # start_time/end_time, both days inclusive, window_days per request
DAY = "day"  # start_time only: one day per request
NO_DATES = None

# The types of the report fields a row may declare
FIELD_TYPES: dict[str, type[th.JSONTypeHelper] | th.JSONTypeHelper] = {
    ROW_KEY: th.StringType,
    "id": th.IntegerType,
    "user_id": th.IntegerType,
    "computer_id": th.IntegerType,
    "department_id": th.IntegerType,
    "activity_id": th.IntegerType,
    "category_id": th.IntegerType,
    "rule_id": th.IntegerType,
    "start_time": th.DateTimeType,
    "end_time": th.DateTimeType,
    "time": th.DateTimeType,
    "date": th.DateType,
    "name": th.StringType,
    # a row's own period: its start_time, else its date (see ReportStream.row_day)
    "period": th.StringType,
    # the emails report (the document's "Get email" sample)
    "attachments": ANY_OBJECT,
    "direction": th.IntegerType,
    "from_address": th.StringType,
    "message": th.StringType,
    "protocol": th.StringType,
    "subject": th.StringType,
    "to_address": ANY_ARRAY,  # "to_address": [ ] in the document, no item type
}
FIELD_DESCRIPTIONS = {
    ROW_KEY: "Digest of the row as the API sent it: the key of a report without a guaranteed natural key",
    "date": "The row's day: its own date, else the date of its start_time",
    "period": "The row's start_time, else its date",
}
DATETIME_FIELDS = ("start_time", "end_time", "time")
#: fields the tap computes: a row's own field of that name is kept in ``extra``
COMPUTED = frozenset({ROW_KEY, "period"})

# What the contract guarantees: the ids the filters name, times of time-based rows
WHO_FIELDS = ("user_id", "department_id")
TIMES = ("start_time", "end_time")
#: event rows: the users/departments filters name no computer, and many events
#: can share a user and a start_time, so no natural key is guaranteed
EVENT = (ROW_KEY, *WHO_FIELDS, "computer_id", *TIMES)
EVENT_KEYS = (ROW_KEY,)
#: the cursor reports: their prev cursor is start_time, user_id, computer_id,
#: the unique order of their rows
CURSOR = ("user_id", "computer_id", "department_id", "activity_id", *TIMES)
CURSOR_KEYS = ("user_id", "computer_id", "start_time")
BY_USERS = ("window_start", "user_id")
BY_DAYS = ("date",)

# Report parameters taken from settings (setting name == query parameter)
USERS = "users"
DEPARTMENTS = "departments"
ACTIVITY_TYPE = "activity_type"
AGGREGATE_BY_USER = "aggregate_by_user"
REMOVABLE_ONLY = "removable_only"
INTERVAL = "interval"
LEVEL = "level"
ACTIVITIES = "activities"
COMPUTERS = "computers"
CATEGORIES = "categories"
WEEKDAYS = "weekdays"
HOURS = "hours"
#: the keyword search; the operations and multitasking reports document it
#: with the same description but the render lost its name (README: Filters)
STRING_TO_MATCH = "string_to_match"
#: the one ``user_id`` a report takes instead of ``users``: sent when the
#: ``users`` setting holds exactly one id
USER_ID = "user_id"
WHO = (USERS, DEPARTMENTS)
#: the operations and multitasking reports' filters, as documented
BREAKDOWN = (*WHO, WEEKDAYS, HOURS, COMPUTERS, ACTIVITIES, ACTIVITY_TYPE, LEVEL, CATEGORIES, STRING_TO_MATCH)
#: the categories distribution report's filters: no activities, level or keyword search
DISTRIBUTION = (*WHO, WEEKDAYS, HOURS, COMPUTERS, ACTIVITY_TYPE, CATEGORIES)


@dataclasses.dataclass(frozen=True)
class Report:
    name: str
    path: str  # relative to api_url; {user_id} is filled from the parent user
    keys: tuple[str, ...]
    fields: tuple[str, ...]
    paging: str = OFFSET
    dates: str | None = RANGE
    params: tuple[str, ...] = WHO
    page_limit: int | None = None  # a smaller limit than page_size, where documented
    parent: str | None = None  # "users" or "activities": a child stream per parent record
    selected_by_default: bool = True
    description: str = ""


S = "/api/v1/statistics/"
REPORTS: tuple[Report, ...] = (
    Report("activity_sessions", S + "activitySessions", EVENT_KEYS, EVENT,
           params=(*WHO, AGGREGATE_BY_USER), description="Sessions - Activity report"),
    Report("activities_report", S + "activities", ("window_start", "activity_id"),
           ("activity_id", "name", *WHO_FIELDS), params=(*WHO, STRING_TO_MATCH, ACTIVITY_TYPE, LEVEL),
           description="Activities (statistics) report"),
    Report("alerts", S + "alerts", EVENT_KEYS, (*EVENT, "rule_id"), params=(*WHO, STRING_TO_MATCH),
           description="Behaviour alerts"),
    Report("captions", S + "captions", EVENT_KEYS, (*EVENT, "activity_id"),
           parent="activities", selected_by_default=False,
           description="Window captions of one activity: one request per activity per window"),
    Report("categories_report", S + "categories", ("window_start", ROW_KEY),
           (ROW_KEY, "category_id", "id", "name", *WHO_FIELDS), params=(*WHO, STRING_TO_MATCH, ACTIVITY_TYPE),
           description="Categories report"),
    Report("detailed_files", S + "detailedFiles", EVENT_KEYS, EVENT,
           params=(*WHO, STRING_TO_MATCH, REMOVABLE_ONLY), description="Detailed files report"),
    Report("detailed_activities", S + "detailedActivities", CURSOR_KEYS, CURSOR, paging=PREV,
           params=(ACTIVITIES, *WHO, STRING_TO_MATCH, ACTIVITY_TYPE),
           description="Detailed (raw) activities, prev cursor"),
    Report("emails", S + "emails", ("id",),
           ("id", "user_id", "computer_id", "department_id", "time", "direction", "from_address",
            "to_address", "subject", "message", "protocol", "attachments"), params=(*WHO, STRING_TO_MATCH),
           description="Emails report"),
    Report("keystrokes", S + "keystrokes", EVENT_KEYS, EVENT,
           params=(*WHO, STRING_TO_MATCH, ACTIVITY_TYPE), description="Keystrokes report"),
    Report("printing", S + "printing", EVENT_KEYS, EVENT, params=(*WHO, STRING_TO_MATCH),
           description="Printing report"),
    Report("productivity", S + "productivity", BY_USERS, WHO_FIELDS, paging=SINGLE,
           description="Productivity report (one page)"),
    Report("searches", S + "searches", EVENT_KEYS, EVENT, params=(*WHO, STRING_TO_MATCH),
           description="Searches report"),
    Report("logons", S + "logons", EVENT_KEYS, EVENT, description="Sessions - Logons report"),
    Report("users_activities_timeline", S + "usersActivitiesTimeline", CURSOR_KEYS, CURSOR,
           paging=PREV, params=(ACTIVITIES, *WHO, STRING_TO_MATCH, ACTIVITY_TYPE),
           description="Raw users activities timeline, prev cursor"),
    Report("users_activities", S + "usersActivities", (ROW_KEY,), (ROW_KEY, "user_id", "activity_id"),
           dates=NO_DATES, params=(), description="Users activities (full table, no date filter)"),
    Report("users_productivity", S + "users", BY_USERS, WHO_FIELDS, params=(STRING_TO_MATCH, *WHO),
           description="Users (productivity) report"),
    Report("workload_by_users", S + "workloadByUsers", BY_USERS, WHO_FIELDS),
    Report("workload_by_days", S + "workloadByDays", BY_DAYS, ("date", "user_id", "department_id", *TIMES),
           params=(USER_ID, DEPARTMENTS)),
    Report("workload_by_departments", S + "workloadByDepartments", ("window_start", "department_id"),
           ("department_id", "name")),
    Report("operations_by_users", S + "operationsByUsers", BY_USERS, WHO_FIELDS, params=BREAKDOWN),
    Report("operations_by_days", S + "operationsByDays", BY_DAYS, ("date", *WHO_FIELDS, *TIMES),
           params=BREAKDOWN),
    Report("multitasking_by_users", S + "multitaskingByUsers", BY_USERS, WHO_FIELDS, params=BREAKDOWN),
    Report("multitasking_by_days", S + "multitaskingByDays", BY_DAYS, ("date", *WHO_FIELDS, *TIMES),
           params=BREAKDOWN),
    Report("categories_distribution_by_users", S + "categoriesDistributionByUsers",
           BY_USERS, WHO_FIELDS, params=DISTRIBUTION),
    Report("timeline_summary", S + "timelineSummary", ("user_id", "period"),
           ("user_id", "department_id", "period", *TIMES), dates=DAY,
           params=(*WHO, INTERVAL), page_limit=25, description="Timeline summary, one day per request"),
    Report("timeline_summary_by_user", S + "timelineSummary/{user_id}", ("user_id", "period"),
           ("user_id", "period", "date", *TIMES),
           params=(INTERVAL,), page_limit=25, parent="users", description="Timeline summary of one user"),
    Report("timeline_raw", S + "timelineRaw", EVENT_KEYS, EVENT, dates=DAY, page_limit=25,
           description="Timeline RAW, one day per request"),
    Report("timeline_raw_by_user", S + "timelineRaw/{user_id}", EVENT_KEYS, EVENT, params=(),
           page_limit=25, parent="users", description="Timeline RAW of one user"),
)


class ReportStream(WindowedStream):
    """A report endpoint, configured by its ``Report`` row."""

    report: t.ClassVar[Report]

    @property
    @override
    def page_size(self) -> int:
        size = int(self.config["page_size"])
        return min(size, self.report.page_limit) if self.report.page_limit else size

    @override
    def page_paginator(self, start: t.Any) -> BaseAPIPaginator:
        if self.report.paging == PREV:
            return PrevCursorPaginator(self.page_size, start_value=start)
        if self.report.paging == SINGLE:
            return SinglePagePaginator()
        return OffsetPaginator(start_value=0, page_size=self.page_size)

    @override
    def windows(self, context: Context | None, now: dt.datetime | None = None) -> list[Window | None]:
        if self.report.dates is NO_DATES:  # a full table: one request sequence, without dates
            return [None]
        return super().windows(context, now)

    @override
    def get_records(self, context: Context | None) -> t.Iterable[dict]:
        self._warn_unapplied_user_filter()
        return super().get_records(context)

    @override
    def get_url_params(self, context: Context | None, next_page_token: WindowPage | None) -> dict[str, t.Any]:
        params = super().get_url_params(context, next_page_token)  # the window, if any
        assert next_page_token is not None
        report, page = self.report, next_page_token.page
        if report.paging == OFFSET:
            params["limit"] = self.page_size
            params["offset"] = page or 0
        elif report.paging == PREV:
            params["limit"] = self.page_size
            if page:
                params["prev"] = page
        if report.parent == "activities" and context:
            params["activity_id"] = context["activity_id"]
        for name in report.params:
            if name == USER_ID:
                users = self.config.get(USERS) or []
                if len(users) == 1:
                    params[USER_ID] = users[0]
                continue
            value = self.config.get(name)
            if value is None or value == [] or value == "":
                continue  # sent only when set
            params[name] = query_value(value)
        return params

    warned_user_filter = False

    def _warn_unapplied_user_filter(self) -> None:
        users = self.config.get(USERS) or []
        if USER_ID in self.report.params and len(users) > 1 and not self.warned_user_filter:
            self.warned_user_filter = True
            self.logger.warning(
                "%s: the API filters this report by a single user_id; the users setting holds %d ids, "
                "so the users filter is not applied to it (it is read for every user)",
                self.name, len(users),
            )

    @override
    def record_from_row(self, row: dict, context: Context | None = None) -> dict:
        record = super().record_from_row(row, context)
        if not (context or self.derives_fields):
            return record
        if context:  # a child report: its rows belong to the parent record
            for key, value in context.items():
                if record.get(key) is None and key in self.declared_fields:
                    record[key] = value
        if self.has_date:
            day = self.row_day(row)
            if day is None:
                day = self._one_day_window("date", row)
            elif row.get("date") is not None and row["date"] != day:
                record[EXTRA]["date"] = row["date"]  # not a plain date: keep what the API sent
            record["date"] = day
        if self.has_period:
            record["period"] = record.get("start_time") or self.row_day(row) or self._one_day_window("period", row)
        if self.has_row_key:
            record[ROW_KEY] = row_digest(row, context)
        return record

    @staticmethod
    def row_day(row: dict) -> str | None:
        """The day a row is about: its own ``date``, else the date of its
        ``start_time`` as the API wrote it (the day of the API's own clock)."""
        for field in ("date", "start_time"):
            value = row.get(field)
            if isinstance(value, str) and len(value) >= 10:
                try:
                    return dt.date.fromisoformat(value[:10]).isoformat()
                except ValueError:
                    continue
        return None

    def _one_day_window(self, field: str, row: dict) -> str:
        """A row that says nothing of its day is about the window's day, when
        the window is one day; over a longer window its day is unknown, and
        giving every such row the window's first day would merge the days."""
        window = self.current_window
        if window is not None and window.start == window.end:
            return window.start.isoformat()
        span = f"{window.start}..{window.end}" if window else "a request without dates"
        raise ControlioAPIError(
            f"Controlio answered {self.path} for {span} with a {self.name} row without date or start_time "
            f"(the row has: {', '.join(sorted(row)) or 'no fields'}): its {field}, part of the primary key, "
            f"is unknown over a window longer than one day; set window_days to 1"
        )

    @cached_property
    def derives_fields(self) -> bool:
        """Whether rows get a date, a period or a row_key besides what the API sent."""
        return self.has_date or self.has_period or self.has_row_key

    @cached_property
    def has_period(self) -> bool:
        return "period" in self.schema["properties"]

    @cached_property
    def has_date(self) -> bool:
        return "date" in self.declared_fields

    @cached_property
    def has_row_key(self) -> bool:
        return ROW_KEY in self.schema["properties"]


def report_schema(report: Report) -> dict:
    props = [th.Property(f, FIELD_TYPES[f], required=f in report.keys, description=FIELD_DESCRIPTIONS.get(f))
             for f in report.fields]
    if report.dates is not NO_DATES:
        props.append(th.Property("window_start", th.DateType, required=True,
                                 description="First day of the request window (the bookmark)"))
        props.append(th.Property("window_end", th.DateType, description="Last day of the request window"))
    props.append(th.Property(EXTRA, ANY_OBJECT,
                             description="Every field the API returned that is not declared above."))
    return th.PropertiesList(*props).to_dict()


def report_stream_class(report: Report) -> type[ReportStream]:
    attrs: dict[str, t.Any] = {
        "report": report,
        "name": report.name,
        "default_path": report.path,
        "primary_keys": report.keys,
        "schema": report_schema(report),
        "datetime_fields": tuple(f for f in report.fields if f in DATETIME_FIELDS),
        "computed_fields": WindowedStream.computed_fields | {f for f in report.fields if f in COMPUTED},
        "one_day_per_request": report.dates == DAY,
        "resumes_inside_window": report.paging == PREV,
        "selected_by_default": report.selected_by_default,
        "__doc__": report.description or f"The {report.name} report.",
    }
    if report.parent:
        attrs["parent_stream_type"] = PARENTS[report.parent]
    if report.dates is NO_DATES:
        attrs["replication_key"] = None
        attrs["is_sorted"] = False
    camel = "".join(part.title() for part in report.name.split("_"))
    return type(f"{camel}Stream", (ReportStream,), attrs)


REPORT_STREAMS: list[type[ReportStream]] = [report_stream_class(r) for r in REPORTS]
