"""Every Controlio report, declared as one table; the stream classes are built
from it. A new report is one row of ``REPORTS``.

The document gives no report fields, so each row declares what can be known
(the ids its filters name, its times, the window it was read in); every other
field the API returns is kept in the ``extra`` object column.
"""

from __future__ import annotations

import dataclasses
import typing as t
from functools import cached_property

from singer_sdk import typing as th
from singer_sdk.pagination import SinglePagePaginator

from tap_controlio.client import (
    EXTRA,
    OffsetPaginator,
    PrevCursorPaginator,
    WindowedStream,
)
from tap_controlio.streams import ANY_OBJECT, ActivitiesStream, UsersStream

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
FIELD_TYPES: dict[str, th.JSONTypeHelper] = {
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
    # a row's own period: its start_time, else its date, else the window's first day
    "period": th.StringType,
    # the emails report (the document's "Get email" sample)
    "attachments": ANY_OBJECT,
    "direction": th.IntegerType,
    "from_address": th.StringType,
    "message": th.StringType,
    "protocol": th.StringType,
    "subject": th.StringType,
    "to_address": th.ArrayType(th.StringType),
}
DATETIME_FIELDS = ("start_time", "end_time", "time")

EVENT = ("user_id", "computer_id", "start_time", "end_time")
EVENT_KEYS = ("user_id", "computer_id", "start_time")

# Report parameters taken from settings (setting name == query parameter)
USERS = "users"
DEPARTMENTS = "departments"
ACTIVITY_TYPE = "activity_type"
AGGREGATE_BY_USER = "aggregate_by_user"
REMOVABLE_ONLY = "removable_only"
INTERVAL = "interval"
WHO = (USERS, DEPARTMENTS)


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
    Report("activities_report", S + "activities", ("window_start", "activity_id"), ("activity_id", "name"),
           params=(*WHO, ACTIVITY_TYPE), description="Activities (statistics) report"),
    Report("alerts", S + "alerts", EVENT_KEYS, (*EVENT, "rule_id"), description="Behaviour alerts"),
    Report("captions", S + "captions", ("activity_id", *EVENT_KEYS), (*EVENT, "activity_id"),
           parent="activities", selected_by_default=False,
           description="Window captions of one activity: one request per activity per window"),
    Report("categories_report", S + "categories", ("window_start", "category_id"), ("category_id", "name"),
           params=(*WHO, ACTIVITY_TYPE), description="Categories report"),
    Report("detailed_files", S + "detailedFiles", EVENT_KEYS, EVENT,
           params=(*WHO, REMOVABLE_ONLY), description="Detailed files report"),
    Report("detailed_activities", S + "detailedActivities", EVENT_KEYS, (*EVENT, "activity_id"), paging=PREV,
           params=(*WHO, ACTIVITY_TYPE), description="Detailed (raw) activities, prev cursor"),
    Report("emails", S + "emails", ("id",),
           ("id", "user_id", "computer_id", "time", "direction", "from_address", "to_address",
            "subject", "message", "protocol", "attachments"), description="Emails report"),
    Report("keystrokes", S + "keystrokes", EVENT_KEYS, EVENT,
           params=(*WHO, ACTIVITY_TYPE), description="Keystrokes report"),
    Report("printing", S + "printing", EVENT_KEYS, EVENT, description="Printing report"),
    Report("productivity", S + "productivity", ("window_start", "user_id"), ("user_id",), paging=SINGLE,
           description="Productivity report (one page)"),
    Report("searches", S + "searches", EVENT_KEYS, EVENT, description="Searches report"),
    Report("logons", S + "logons", EVENT_KEYS, EVENT, description="Sessions - Logons report"),
    Report("users_activities_timeline", S + "usersActivitiesTimeline", EVENT_KEYS, (*EVENT, "activity_id"),
           paging=PREV, params=(*WHO, ACTIVITY_TYPE), description="Raw users activities timeline, prev cursor"),
    Report("users_activities", S + "usersActivities", ("user_id", "activity_id"), ("user_id", "activity_id"),
           dates=NO_DATES, params=(), description="Users activities (full table, no date filter)"),
    Report("users_productivity", S + "users", ("window_start", "user_id"), ("user_id",),
           description="Users (productivity) report"),
    Report("workload_by_users", S + "workloadByUsers", ("window_start", "user_id"), ("user_id",)),
    Report("workload_by_days", S + "workloadByDays", ("window_start", "date"), ("date",), params=(DEPARTMENTS,)),
    Report("workload_by_departments", S + "workloadByDepartments", ("window_start", "department_id"),
           ("department_id", "name")),
    Report("operations_by_users", S + "operationsByUsers", ("window_start", "user_id"), ("user_id",),
           params=(*WHO, ACTIVITY_TYPE)),
    Report("operations_by_days", S + "operationsByDays", ("window_start", "date"), ("date",),
           params=(*WHO, ACTIVITY_TYPE)),
    Report("multitasking_by_users", S + "multitaskingByUsers", ("window_start", "user_id"), ("user_id",),
           params=(*WHO, ACTIVITY_TYPE)),
    Report("multitasking_by_days", S + "multitaskingByDays", ("window_start", "date"), ("date",),
           params=(*WHO, ACTIVITY_TYPE)),
    Report("categories_distribution_by_users", S + "categoriesDistributionByUsers",
           ("window_start", "user_id"), ("user_id",), params=(*WHO, ACTIVITY_TYPE)),
    Report("timeline_summary", S + "timelineSummary", ("user_id", "period"),
           ("user_id", "period", "start_time", "end_time"), dates=DAY,
           params=(*WHO, INTERVAL), page_limit=25, description="Timeline summary, one day per request"),
    Report("timeline_summary_by_user", S + "timelineSummary/{user_id}", ("user_id", "period"),
           ("user_id", "period", "date", "start_time", "end_time"),
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
    def page_size(self) -> int:
        size = int(self.config.get("page_size", 10000))
        return min(size, self.report.page_limit) if self.report.page_limit else size

    def get_new_paginator(self) -> t.Any:
        if self.report.paging == PREV:
            return PrevCursorPaginator(self.page_size, start_value=self.resume_cursor)
        if self.report.paging == SINGLE:
            return SinglePagePaginator()
        return OffsetPaginator(start_value=0, page_size=self.page_size)

    def get_records(self, context: dict | None) -> t.Iterable[dict]:
        if self.report.dates is NO_DATES:  # a full table: no windows
            return super(WindowedStream, self).get_records(context)
        return super().get_records(context)

    def get_url_params(self, context: dict | None, next_page_token: t.Any) -> dict[str, t.Any]:
        report = self.report
        params: dict[str, t.Any] = {"sort_direction": "asc"}
        if report.paging == OFFSET:
            params["limit"] = self.page_size
            params["offset"] = next_page_token or 0
        elif report.paging == PREV:
            params["limit"] = self.page_size
            if next_page_token:
                params["prev"] = next_page_token
                # every row before this cursor is written: keep it in the state
                self.save_page_cursor(context, next_page_token)
        if report.dates is not NO_DATES:
            params.update(self.window_params())
        if report.parent == "activities" and context:
            params["activity_id"] = context["activity_id"]
        for name in report.params:
            value = self.config.get(name)
            if value is None or value == []:
                continue
            if isinstance(value, bool):
                params[name] = "true" if value else "false"
            elif isinstance(value, list):
                params[name] = ",".join(str(v) for v in value)
            else:
                params[name] = value
        return params

    def post_process(self, row: dict, context: dict | None = None) -> dict | None:
        record = super().post_process(row, context)
        if record is None:
            return None
        if context:  # a child report: its rows belong to the parent record
            for key, value in context.items():
                if record.get(key) is None and key in self._declared:
                    record[key] = value
        if self._has_date:
            day = record.get("date")
            if day is None and self._window is not None:
                start = record.get("start_time")
                record["date"] = start[:10] if isinstance(start, str) else self._window.start.isoformat()
            elif isinstance(day, str) and len(day) > 10:
                record["date"] = day[:10]
        if self._has_period and self._window is not None:
            record["period"] = record.get("start_time") or record.get("date") or self._window.start.isoformat()
        return record

    @cached_property
    def _has_period(self) -> bool:
        return "period" in self._declared

    @cached_property
    def _has_date(self) -> bool:
        return "date" in self._declared


def _schema(report: Report) -> dict:
    props = [th.Property(f, FIELD_TYPES[f], required=f in report.keys) for f in report.fields]
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
        "schema": _schema(report),
        "datetime_fields": tuple(f for f in report.fields if f in DATETIME_FIELDS),
        "one_day_per_request": report.dates == DAY,
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
