"""tap-controlio: the Controlio API 1.1 as Singer streams."""

from __future__ import annotations

import os
import sys
import typing as t

from singer_sdk import Tap
from singer_sdk import typing as th
from singer_sdk.contrib.msgspec import MsgSpecWriter
from singer_sdk.singerlib import RecordMessage
from typing_extensions import override

from tap_controlio import period
from tap_controlio._sdk import CheckedConfig
from tap_controlio.client import MAX_PAGE_SIZE, ControlioStream
from tap_controlio.reports import REPORT_STREAMS
from tap_controlio.streams import COLLECTION_STREAMS, AuditLogStream

DEFAULT_API_URL = "https://backend.controlio.net"

STREAM_TYPES: list[type[ControlioStream]] = [*COLLECTION_STREAMS, AuditLogStream, *REPORT_STREAMS]
STREAM_NAMES = frozenset(s.name for s in STREAM_TYPES)  # type: ignore[misc]  # every stream class names itself

#: the settings every tap of this project describes in the same words
START_DATE_TEXT = ("Where the first sync starts, inclusive: an ISO date (its midnight) or date-time, UTC unless it "
                   "carries an offset. Default: 30 days before today, at midnight UTC.")
END_DATE_TEXT = ("Optional end of the synced period, exclusive, for backfills: a date-time ends it at that instant, "
                 "an ISO date at the midnight after that day (so that day is synced). UTC unless it carries an "
                 "offset. Streams read by whole days read every day that starts before it. Default: none (up to "
                 "now).")
WINDOW_DAYS_TEXT = "Days per request; the bookmark advances after each window."
LOOKBACK_DAYS_TEXT = ("Days before the bookmark that every incremental sync reads again, because the vendor still "
                      "changes recent data (rows read again are upserted by key).")
ACTIVATE_TEXT = ("Emit ACTIVATE_VERSION messages for full-table streams, so that a loader that reads them (e.g. "
                 "target-postgres with activate_version) marks or removes rows gone at the vendor.")
#: an ISO date, or a date-time with an optional offset (checked as a real date by ``check_config``)
ISO_DATE_OR_DATE_TIME = r"^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?([Zz]|[+-]\d{2}:?\d{2})?)?$"

# The audit log filters' allowed values, as documented.
AUDIT_OBJECT_TYPES = [
    "login", "page", "user", "department", "computer", "activity", "category", "options", "rule",
    "scheduled_report", "account", "video_export_task", "live_stream", "policy", "report", "tour",
    "personal_token", "client_agent",
]
AUDIT_API_TYPES = ["rest", "rpc"]
#: the documented productivity levels, 0 very distracting ... 4 very productive
PRODUCTIVITY_LEVELS = [0, 1, 2, 3, 4]
#: the audit log's ip filter: "The IPv4 of a login who called an action"
IPV4_PATTERN = r"^((25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])\.){3}(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])$"
AUDIT_ACTIONS = [
    "view", "create", "update", "delete", "move", "clear", "logon", "logon_failed", "logoff",
    "change_password", "recover_password", "reset_password", "invite", "enable_mfa", "disable_mfa",
    "uninstall", "start_tour", "change_password_failed", "reset_password_failed",
    "logon_failed_blocked", "unblock", "login_blocked", "export_csv", "export_pdf",
    "win_client_update", "mac_client_update", "update_smtp_settings", "update_security_settings",
    "download", "sso.saml.successfull_login", "sso.saml.login_attempt",
]


class RecordBufferingWriter(MsgSpecWriter):
    """msgspec's writer, but RECORD lines are left in stdout's buffer instead of
    being flushed one by one (the per-record flush is a system call per
    record). Every other message (SCHEMA, STATE...) flushes, so a STATE line
    never reaches the target before its records, and a killed tap loses only
    records written after its last STATE, which a resumed sync reads again."""

    @override
    def write_message(self, message: t.Any) -> None:
        sys.stdout.buffer.write(self.format_message(message))
        if not isinstance(message, RecordMessage):
            sys.stdout.flush()


def paths_name_streams(schema: dict) -> dict:
    """The config schema, where a key of the ``paths`` setting must name a stream of this tap."""
    schema["properties"]["paths"]["propertyNames"] = {"enum": sorted(STREAM_NAMES)}
    return schema


class TapControlio(CheckedConfig, Tap):
    """Controlio: the seven collections, the audit log and every report."""

    name = "tap-controlio"
    message_writer_class = RecordBufferingWriter
    SECRET_SETTINGS = ("api_token",)

    config_jsonschema = paths_name_streams(th.PropertiesList(
        th.Property("api_token", th.StringType(pattern=r"\S"), required=True, secret=True,
                    description="The account's API token (sent as a Bearer token)."),
        th.Property("api_url", th.URIType(pattern="^https?://"), default=DEFAULT_API_URL,
                    description="Root of the Controlio API (https://, or http://)."),
        th.Property("start_date", th.DateTimeType(pattern=ISO_DATE_OR_DATE_TIME), description=START_DATE_TEXT),
        th.Property("end_date", th.DateTimeType(pattern=ISO_DATE_OR_DATE_TIME), description=END_DATE_TEXT),
        th.Property("window_days", th.IntegerType(minimum=1), default=1, description=WINDOW_DAYS_TEXT),
        th.Property("lookback_days", th.IntegerType(minimum=0), default=1, description=LOOKBACK_DAYS_TEXT),
        th.Property("page_size", th.IntegerType(minimum=1, maximum=MAX_PAGE_SIZE), default=MAX_PAGE_SIZE,
                    description="Rows per request (limit), at most 10000."),
        th.Property("users", th.ArrayType(th.IntegerType),
                    description="Report filter: only these user ids."),
        th.Property("departments", th.ArrayType(th.IntegerType),
                    description="Report filter: only these department ids."),
        th.Property("activity_type", th.IntegerType, allowed_values=[0, 1, 2],
                    description="Report filter: 0 applications, 1 websites, 2 both."),
        th.Property("interval", th.IntegerType, allowed_values=[5, 15, 30, 60],
                    description="Timeline summary aggregation interval in minutes: 5, 15, 30 or 60."),
        th.Property("aggregate_by_user", th.BooleanType,
                    description="activity_sessions: aggregate a user's sessions over all computers."),
        th.Property("removable_only", th.BooleanType,
                    description="detailed_files: only operations from/to removable devices."),
        th.Property("level", th.IntegerType, allowed_values=PRODUCTIVITY_LEVELS,
                    description="Report filter: productivity level, 0 very distracting, 1 distracting, 2 neutral, "
                                "3 productive, 4 very productive (activities_report, operations_*, "
                                "multitasking_*)."),
        th.Property("activities", th.ArrayType(th.IntegerType),
                    description="Report filter: only these activity ids (detailed_activities, "
                                "users_activities_timeline, operations_*, multitasking_*)."),
        th.Property("computers", th.ArrayType(th.IntegerType),
                    description="Report filter: only these computer ids (operations_*, multitasking_*, "
                                "categories_distribution_by_users)."),
        th.Property("categories", th.ArrayType(th.IntegerType),
                    description="Report filter: only these category ids (operations_*, multitasking_*, "
                                "categories_distribution_by_users)."),
        th.Property("weekdays", th.ArrayType(th.IntegerType(minimum=0, maximum=6)),
                    description="Report filter: weekdays, 0 Sunday, 1 Monday ... 6 Saturday (operations_*, "
                                "multitasking_*, categories_distribution_by_users)."),
        th.Property("hours", th.ArrayType(th.IntegerType(minimum=0, maximum=23)),
                    description="Report filter: hours of the day, 0 to 23 (operations_*, multitasking_*, "
                                "categories_distribution_by_users)."),
        th.Property("string_to_match", th.StringType(min_length=1),
                    description="Report filter: keyword search, rows matching these keywords (the reports that "
                                "document the keyword search; see the README)."),
        th.Property("audit_object_types", th.ArrayType(th.StringType(allowed_values=AUDIT_OBJECT_TYPES)),
                    description="audit_log filter: object types (e.g. login, policy)."),
        th.Property("audit_api_types", th.ArrayType(th.StringType(allowed_values=AUDIT_API_TYPES)),
                    description="audit_log filter: rest and/or rpc."),
        th.Property("audit_actions", th.ArrayType(th.StringType(allowed_values=AUDIT_ACTIONS)),
                    description="audit_log filter: actions (e.g. update, download)."),
        th.Property("audit_logins", th.ArrayType(th.IntegerType(minimum=1)),
                    description="audit_log filter: ids of the logins that acted."),
        th.Property("audit_emails", th.ArrayType(th.StringType),
                    description="audit_log filter: emails of the logins that acted (ignored when audit_logins "
                                "is set)."),
        th.Property("audit_object_id", th.IntegerType(minimum=1),
                    description="audit_log filter: the id of the affected object (with audit_object_types)."),
        th.Property("audit_ip", th.StringType(pattern=IPV4_PATTERN),
                    description="audit_log filter: the IPv4 address of the login that acted."),
        th.Property("audit_apply_timezone", th.BooleanType,
                    description="audit_log: true reads the start_time/end_time days in the account's timezone "
                                "(the API's default, false, reads them in UTC); entry times stay UTC."),
        th.Property("paths", th.ObjectType(additional_properties=th.StringType(pattern="^/")),
                    description="Stream name to URL path (starting with /), overriding the default paths."),
        th.Property("request_timeout", th.NumberType(exclusive_minimum=0), default=300,
                    description="Seconds before a request times out (it is then retried)."),
        th.Property("max_retries", th.IntegerType(minimum=1), default=5,
                    description="Attempts per request on 429, 5xx, timeouts and dropped connections."),
        th.Property("retry_backoff_seconds", th.NumberType(minimum=0), default=2,
                    description="First wait between retries, doubled each time, at most 600 seconds; Retry-After "
                                "wins when sent."),
        th.Property("verify_ssl", th.BooleanType, default=True,
                    description="Verify the server's TLS certificate."),
        th.Property("ca_bundle", th.StringType,
                    description="Path of a CA bundle to verify the server's certificate with."),
        th.Property("emit_activate_version_messages", th.BooleanType, default=False, description=ACTIVATE_TEXT),
    ).to_dict())

    @override
    def check_config(self, config: t.Mapping[str, t.Any]) -> list[str]:
        """The rules the JSON schema cannot state: real dates, end_date after
        start_date, and a CA bundle that exists on this machine."""
        errors = []
        instants = {}
        for name in ("start_date", "end_date"):
            value = config.get(name)
            if value:
                try:
                    instants[name] = period.parse_instant(value, lowercase_z=True)
                except ValueError:
                    errors.append(f"{name} {value!r} is not an ISO date (YYYY-MM-DD) or date-time")
        end = period.end_instant(config, lowercase_z=True) if "end_date" in instants else None
        if "start_date" in instants and end is not None and end <= instants["start_date"]:
            errors.append(f"end_date {config['end_date']!r} is not after start_date {config['start_date']!r}: "
                          "the period is empty")
        bundle = config.get("ca_bundle")
        if bundle and not os.path.exists(bundle):
            errors.append(f"ca_bundle {bundle!r} does not exist")
        return errors

    @override
    def discover_streams(self) -> list:
        return [stream_type(tap=self) for stream_type in STREAM_TYPES]


if __name__ == "__main__":
    TapControlio.cli()
