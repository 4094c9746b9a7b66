"""tap-controlio: the Controlio API 1.1 as Singer streams."""

from __future__ import annotations

import datetime as dt
import os
import re
import sys
import typing as t

from singer_sdk import Tap
from singer_sdk import typing as th
from singer_sdk.contrib.msgspec import MsgSpecWriter
from singer_sdk.exceptions import ConfigValidationError
from singer_sdk.singerlib import RecordMessage

from tap_controlio.client import MAX_PAGE_SIZE
from tap_controlio.reports import REPORT_STREAMS
from tap_controlio.streams import AUDIT_LIST_FILTERS, COLLECTION_STREAMS, AuditLogStream

DEFAULT_API_URL = "https://backend.controlio.net"

STREAM_TYPES = [*COLLECTION_STREAMS, AuditLogStream, *REPORT_STREAMS]
STREAM_NAMES = frozenset(s.name for s in STREAM_TYPES)

# The audit log filters' allowed values, as documented.
AUDIT_OBJECT_TYPES = {
    "login", "page", "user", "department", "computer", "activity", "category", "options", "rule",
    "scheduled_report", "account", "video_export_task", "live_stream", "policy", "report", "tour",
    "personal_token", "client_agent",
}
AUDIT_API_TYPES = {"rest", "rpc"}
#: the documented productivity levels, 0 very distracting ... 4 very productive
PRODUCTIVITY_LEVELS = [0, 1, 2, 3, 4]
#: the audit log's ip filter: "The IPv4 of a login who called an action"
IPV4_PATTERN = r"^((25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])\.){3}(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])$"
AUDIT_ACTIONS = {
    "view", "create", "update", "delete", "move", "clear", "logon", "logon_failed", "logoff",
    "change_password", "recover_password", "reset_password", "invite", "enable_mfa", "disable_mfa",
    "uninstall", "start_tour", "change_password_failed", "reset_password_failed",
    "logon_failed_blocked", "unblock", "login_blocked", "export_csv", "export_pdf",
    "win_client_update", "mac_client_update", "update_smtp_settings", "update_security_settings",
    "download", "sso.saml.successfull_login", "sso.saml.login_attempt",
}


class RecordBufferingWriter(MsgSpecWriter):
    """msgspec's writer, but RECORD lines are left in stdout's buffer instead of
    being flushed one by one (the per-record flush is a system call per
    record). Every other message (SCHEMA, STATE...) flushes, so a STATE line
    never reaches the target before its records, and a killed tap loses only
    records written after its last STATE, which a resumed sync reads again."""

    def write_message(self, message: t.Any) -> None:
        sys.stdout.buffer.write(self.format_message(message))
        if not isinstance(message, RecordMessage):
            sys.stdout.flush()


class TapControlio(Tap):
    """Controlio: the seven collections, the audit log and every report."""

    name = "tap-controlio"
    message_writer_class = RecordBufferingWriter

    config_jsonschema = th.PropertiesList(
        th.Property("api_token", th.StringType, required=True, secret=True,
                    description="The account's API token (sent as a Bearer token)."),
        th.Property("api_url", th.StringType, default=DEFAULT_API_URL,
                    description="Root of the Controlio API."),
        th.Property("start_date", th.DateTimeType,
                    description="First day of the first sync (ISO date or date-time); default 30 days ago, UTC."),
        th.Property("end_date", th.DateTimeType,
                    description="Optional last day to sync, for backfills."),
        th.Property("window_days", th.IntegerType, default=1,
                    description="Days per report request; the bookmark advances per window."),
        th.Property("lookback_days", th.IntegerType, default=1,
                    description="Days before today re-read on every sync, since recent data keeps changing."),
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
        th.Property("audit_object_types", th.ArrayType(th.StringType),
                    description="audit_log filter: object types (e.g. login, policy)."),
        th.Property("audit_api_types", th.ArrayType(th.StringType),
                    description="audit_log filter: rest and/or rpc."),
        th.Property("audit_actions", th.ArrayType(th.StringType),
                    description="audit_log filter: actions (e.g. update, download)."),
        th.Property("audit_logins", th.ArrayType(th.IntegerType(minimum=1)),
                    description="audit_log filter: ids of the logins that acted."),
        th.Property("audit_emails", th.ArrayType(th.StringType),
                    description="audit_log filter: emails of the logins that acted (ignored when audit_logins is set)."),
        th.Property("audit_object_id", th.IntegerType(minimum=1),
                    description="audit_log filter: the id of the affected object (with audit_object_types)."),
        th.Property("audit_ip", th.StringType(pattern=IPV4_PATTERN),
                    description="audit_log filter: the IPv4 address of the login that acted."),
        th.Property("audit_apply_timezone", th.BooleanType,
                    description="audit_log: true reads the start_time/end_time days in the account's timezone "
                                "(the API's default, false, reads them in UTC); entry times stay UTC."),
        th.Property("paths", th.ObjectType(additional_properties=th.StringType),
                    description="Stream name to URL path, overriding the default paths."),
        th.Property("request_timeout", th.NumberType, default=300,
                    description="Seconds before a request times out (it is then retried)."),
        th.Property("max_retries", th.IntegerType, default=5,
                    description="Attempts per request on 429, 5xx, timeouts and dropped connections."),
        th.Property("retry_backoff_seconds", th.NumberType, default=2,
                    description="First wait between retries, doubled each time; Retry-After wins when sent."),
        th.Property("verify_ssl", th.BooleanType, default=True,
                    description="Verify the server's TLS certificate."),
        th.Property("ca_bundle", th.StringType,
                    description="Path of a CA bundle to verify the server's certificate with."),
    ).to_dict()

    def _validate_config(self, *, raise_errors: bool = True) -> list[str]:
        """singer-sdk's schema check, then `check_config`, before any request.

        A schema error can quote a value (``12345 is not of type 'string'``):
        the token is masked in every message.
        """
        try:
            errors = super()._validate_config(raise_errors=raise_errors)
            schema = None
        except ConfigValidationError as exc:
            errors, schema = list(exc.errors), exc.schema
        errors = [*errors, *check_config(self._config)]
        token = str(self._config.get("api_token") or "")
        if len(token) >= 3:
            errors = [error.replace(token, "<api_token>") for error in errors]
        if errors and (schema is not None or raise_errors):
            raise ConfigValidationError("Config validation failed: " + "; ".join(errors), errors=errors,
                                        schema=schema) from None
        return errors

    def discover_streams(self) -> list:
        return [stream_type(tap=self) for stream_type in STREAM_TYPES]


def check_config(config: t.Mapping[str, t.Any]) -> list[str]:
    """What the JSON schema cannot say about a config, as readable errors naming the setting."""
    errors = []

    def number(name: str, default: float) -> float | None:
        try:
            return float(config.get(name, default))
        except (TypeError, ValueError):
            errors.append(f"{name} must be a number")
            return None

    if "api_token" in config and not str(config["api_token"]).strip():
        errors.append("api_token is empty: set the account's API token")
    url = str(config.get("api_url") or DEFAULT_API_URL)
    if not url.startswith(("http://", "https://")):
        errors.append("api_url must start with https:// (or http://)")
    dates = {}
    for name in ("start_date", "end_date"):
        value = config.get(name)
        if value:
            try:
                dates[name] = dt.date.fromisoformat(str(value)[:10])
            except ValueError:
                errors.append(f"{name} {value!r} is not an ISO date (YYYY-MM-DD or a date-time)")
    if len(dates) == 2 and dates["end_date"] < dates["start_date"]:
        errors.append("end_date is before start_date")
    if (v := number("window_days", 1)) is not None and (v < 1 or v != int(v)):
        errors.append("window_days must be a whole number of days, 1 or more")
    if (v := number("lookback_days", 1)) is not None and (v < 0 or v != int(v)):
        errors.append("lookback_days must be a whole number of days, 0 or more")
    if (v := number("max_retries", 5)) is not None and v < 1:
        errors.append("max_retries must be 1 or more")
    if (v := number("request_timeout", 300)) is not None and v <= 0:
        errors.append("request_timeout must be more than 0 seconds")
    if (v := number("retry_backoff_seconds", 2)) is not None and v < 0:
        errors.append("retry_backoff_seconds must be 0 or more")
    allowed = {"audit_object_types": AUDIT_OBJECT_TYPES, "audit_api_types": AUDIT_API_TYPES,
               "audit_actions": AUDIT_ACTIONS}
    for name, values in allowed.items():
        unknown = sorted(set(config.get(name) or ()) - values)
        if unknown:
            errors.append(f"{name} has values the API does not know: {', '.join(map(str, unknown))}")
    ip = config.get("audit_ip")
    if isinstance(ip, str) and not re.match(IPV4_PATTERN, ip):
        errors.append(f"audit_ip {ip!r} is not an IPv4 address (four numbers 0 to 255, e.g. 192.0.2.10)")
    for name in AUDIT_LIST_FILTERS:
        if config.get(name) is not None and not isinstance(config[name], list):
            errors.append(f"{name} must be a list")
    paths = config.get("paths") or {}
    if not isinstance(paths, dict):
        errors.append("paths must be an object of stream name to URL path")
    else:
        unknown = sorted(set(paths) - STREAM_NAMES)
        if unknown:
            errors.append(f"paths names unknown streams: {', '.join(unknown)}")
        bad = sorted(k for k, v in paths.items() if not isinstance(v, str) or not v.startswith("/"))
        if bad:
            errors.append(f"paths must be URL paths starting with '/': {', '.join(bad)}")
    bundle = config.get("ca_bundle")
    if bundle and not os.path.exists(bundle):
        errors.append(f"ca_bundle {bundle!r} does not exist")
    return errors


if __name__ == "__main__":
    TapControlio.cli()
