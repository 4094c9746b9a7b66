"""tap-sessionreports: Fudo PAM reports (API v2) as Singer streams."""

from __future__ import annotations

import numbers
import os
import sys
import typing as t
from urllib.parse import urlparse

from singer_sdk import Tap
from singer_sdk import typing as th
from singer_sdk.contrib.msgspec import MsgSpecWriter
from singer_sdk.singerlib import RecordMessage, SchemaMessage
from typing_extensions import override

from tap_sessionreports import streams
from tap_sessionreports._sdk import CheckedConfig
from tap_sessionreports.client import parse_datetime

STREAM_TYPES = (
    streams.ReportsStream,
    streams.DefinedReportsStream,
    streams.ReportSubscriptionsStream,
    streams.ReportRowsStream,
)


class RecordBufferingWriter(MsgSpecWriter):
    """msgspec's writer, but RECORD lines are left in stdout's buffer instead of
    being flushed one by one (the per-record flush is a system call per
    record). Every other message (SCHEMA, STATE...) flushes, so a STATE line
    never reaches the target before its records, and a killed tap loses only
    records written after its last STATE, which a resumed sync reads again.

    A SCHEMA message the same as the stream's last one is left out: singer-sdk
    writes a child stream's SCHEMA at every parent record (report_rows: at
    every report), and targets need it once."""

    def __init__(self, *args: t.Any, **kwargs: t.Any) -> None:
        super().__init__(*args, **kwargs)
        self._schemas_written: dict[str, SchemaMessage] = {}

    @override
    def write_message(self, message: t.Any) -> None:
        if isinstance(message, RecordMessage):
            sys.stdout.buffer.write(self.format_message(message))
            return
        if isinstance(message, SchemaMessage):
            if self._schemas_written.get(message.stream) == message:
                return
            self._schemas_written[message.stream] = message
        sys.stdout.buffer.write(self.format_message(message))
        sys.stdout.flush()


class TapSessionReports(CheckedConfig, Tap):
    """Fudo PAM generated reports, report definitions, subscriptions and report rows."""

    name = "tap-sessionreports"
    message_writer_class = RecordBufferingWriter

    config_jsonschema = th.PropertiesList(
        th.Property("api_url", th.StringType, required=True,
                    description="Root of the Fudo PAM appliance, e.g. https://pam.example.com"),
        th.Property("api_token", th.StringType, required=True, secret=True,
                    description="API token, sent as the raw Authorization header."),
        th.Property("start_date", th.DateTimeType,
                    description="Oldest report modification to read on the first sync (default: 30 days ago, UTC)."),
        th.Property("end_date", th.DateTimeType,
                    description="Optional: only records modified before this time (exclusive), for backfills."),
        th.Property("query_filter", th.StringType,
                    description="Extra filter terms for the reports list, in Fudo's filter syntax, "
                                "e.g. user_id.in(1224979098644774913); added to the modified_at filter."),
        th.Property("page_size", th.IntegerType, default=1000, description="limit per list request."),
        th.Property("verify_ssl", th.BooleanType, default=True, description="Verify the appliance's TLS certificate."),
        th.Property("ca_bundle", th.StringType,
                    description="Path of a CA bundle (PEM) to verify the appliance's certificate with."),
        th.Property("request_timeout", th.NumberType, default=300, description="Seconds before a request times out."),
        th.Property("max_retries", th.IntegerType, default=5,
                    description="Attempts per request on 429, 5xx, timeouts and dropped connections."),
        th.Property("retry_backoff_seconds", th.NumberType, default=2,
                    description="First wait between attempts, doubled each time (Retry-After wins when sent)."),
        th.Property("paths", th.ObjectType(additional_properties=th.StringType),
                    description="Stream name -> URL path, overriding the default paths "
                                "(report_rows takes a {report_id} placeholder)."),
    ).to_dict()

    #: never quoted in an error (a schema error can quote the value)
    SECRET_SETTINGS = ("api_token",)

    @override
    def check_config(self, config: t.Mapping[str, t.Any]) -> list[str]:
        """What is wrong with the config, each message naming its setting."""
        return config_errors(config)

    @override
    def discover_streams(self) -> list[streams.SessionReportsStream]:
        return [stream_type(tap=self) for stream_type in STREAM_TYPES]


def config_errors(config: t.Mapping[str, t.Any]) -> list[str]:
    """What is wrong with the config, each message naming its setting."""
    errors = []
    api_url = str(config.get("api_url") or "")
    parsed = urlparse(api_url)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        errors.append(f"api_url must be an http(s) URL such as https://pam.example.com, got {api_url!r}")
    if not str(config.get("api_token") or "").strip():
        errors.append("api_token must not be empty")
    times = {}
    for key in ("start_date", "end_date"):
        if config.get(key):
            try:
                times[key] = parse_datetime(config[key])
            except (TypeError, ValueError):
                errors.append(f"{key} must be an ISO 8601 date or date-time, got {config[key]!r}")
    if "start_date" in times and "end_date" in times and times["end_date"] <= times["start_date"]:
        errors.append("end_date must be after start_date")
    for key, low in (("page_size", 1), ("max_retries", 1)):
        if key in config and (not _is_number(config[key]) or config[key] != int(config[key])
                              or config[key] < low):
            errors.append(f"{key} must be an integer of at least {low}, got {config[key]!r}")
    for key in ("request_timeout", "retry_backoff_seconds"):
        if key in config and (not _is_number(config[key]) or config[key] < 0
                              or (key == "request_timeout" and config[key] == 0)):
            errors.append(f"{key} must be a positive number of seconds, got {config[key]!r}")
    ca_bundle = config.get("ca_bundle")
    if ca_bundle and not os.path.isfile(ca_bundle):
        errors.append(f"ca_bundle {ca_bundle!r} is not a readable file")
    known = {stream_type.name for stream_type in STREAM_TYPES}
    for name, path in (config.get("paths") or {}).items():
        if name not in known:
            errors.append(f"paths: unknown stream {name!r} (streams: {', '.join(sorted(known))})")
        elif not isinstance(path, str) or not path.startswith("/"):
            errors.append(f"paths.{name} must be a path starting with '/', got {path!r}")
        elif name == "report_rows" and "{report_id}" not in path:
            errors.append("paths.report_rows must contain the {report_id} placeholder")
    return errors


def _is_number(value: object) -> bool:
    # the SDK reads JSON numbers as Decimal
    return isinstance(value, numbers.Number) and not isinstance(value, bool)


if __name__ == "__main__":
    TapSessionReports.cli()
