"""tap-sessionreports: Fudo PAM reports (API v2) as Singer streams."""

from __future__ import annotations

import os
import sys
import typing as t

from singer_sdk import Tap
from singer_sdk import typing as th
from singer_sdk.contrib.msgspec import MsgSpecWriter
from singer_sdk.singerlib import RecordMessage, SchemaMessage
from typing_extensions import override

from tap_sessionreports import period, streams
from tap_sessionreports._sdk import CheckedConfig
from tap_sessionreports.client import MAX_RETRY_WAIT, parse_datetime

START_TEXT = (
    "Where the first sync starts, inclusive: an ISO date (its midnight) or date-time, UTC unless it carries an "
    "offset. Default: 30 days before today, at midnight UTC."
)
END_TEXT = (
    "Optional end of the synced period, exclusive, for backfills: a date-time ends it at that instant, an ISO date "
    "at the midnight after that day (so that day is synced). UTC unless it carries an offset. Streams read by whole "
    "days read every day that starts before it. Default: none (up to now)."
)
ACTIVATE_TEXT = (
    "Emit ACTIVATE_VERSION messages for full-table streams, so that a loader that reads them (e.g. target-postgres "
    "with activate_version) marks or removes rows gone at the vendor."
)
#: What a path in ``paths`` must look like, per stream (default: starting with /).
PATH_PATTERNS = {"report_rows": r"^/.*\{report_id\}"}

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
        th.Property("api_url", th.URIType(pattern=r"^https?://[^/\s]+"), required=True,
                    description="Root of the Fudo PAM appliance, an http(s) URL such as https://pam.example.com."),
        th.Property("api_token", th.StringType(min_length=1, pattern=r"\S"), required=True, secret=True,
                    description="API token, sent as the raw Authorization header."),
        th.Property("start_date", th.DateTimeType, description=START_TEXT),
        th.Property("end_date", th.DateTimeType, description=END_TEXT),
        th.Property("query_filter", th.StringType,
                    description="Extra filter terms for the reports list, in Fudo's filter syntax, "
                                "e.g. user_id.in(1224979098644774913); added to the modified_at filter."),
        th.Property("page_size", th.IntegerType(minimum=1), default=1000,
                    description="Records per list request (limit)."),
        th.Property("verify_ssl", th.BooleanType, default=True, description="Verify the appliance's TLS certificate."),
        th.Property("ca_bundle", th.StringType(min_length=1),
                    description="Path of a CA bundle (PEM) to verify the appliance's certificate with."),
        th.Property("request_timeout", th.NumberType(exclusive_minimum=0), default=300,
                    description="Seconds before a request times out (it is then retried)."),
        th.Property("max_retries", th.IntegerType(minimum=1), default=5,
                    description="Attempts per request on 429, 5xx, timeouts and dropped connections."),
        th.Property("retry_backoff_seconds", th.NumberType(minimum=0), default=2,
                    description="First wait between attempts, doubled each time; a Retry-After the appliance "
                                f"sends wins. No single wait is longer than {MAX_RETRY_WAIT:g} seconds."),
        th.Property("paths", th.ObjectType(
            *(th.Property(stream_type.name, th.StringType(pattern=PATH_PATTERNS.get(stream_type.name, "^/")))
              for stream_type in STREAM_TYPES),
            additional_properties=False,
        ), description="Stream name -> URL path, overriding the default paths "
                       "(report_rows takes a {report_id} placeholder)."),
        th.Property("emit_activate_version_messages", th.BooleanType, default=False, description=ACTIVATE_TEXT),
    ).to_dict()

    #: never quoted in an error (a schema error can quote the value)
    SECRET_SETTINGS = ("api_token",)

    @override
    def check_config(self, config: t.Mapping[str, t.Any]) -> list[str]:
        """The rules the JSON schema cannot state, each error naming its setting:
        readable dates (singer-sdk does not check formats), end_date after
        start_date, a CA bundle that exists."""
        errors = []
        times = {}
        for key, read in (("start_date", parse_datetime),
                          ("end_date", lambda value: period.parse_end(value, lowercase_z=True))):
            if config.get(key):
                try:
                    times[key] = read(config[key])
                except (TypeError, ValueError):
                    errors.append(f"{key} must be an ISO 8601 date or date-time, got {config[key]!r}")
        start, end = times.get("start_date"), times.get("end_date")
        if start is not None and end is not None and end <= start:
            errors.append("end_date must be after start_date")
        ca_bundle = config.get("ca_bundle")
        if ca_bundle and not os.path.isfile(ca_bundle):
            errors.append(f"ca_bundle {ca_bundle!r} is not a readable file")
        return errors

    @override
    def discover_streams(self) -> list[streams.SessionReportsStream]:
        return [stream_type(tap=self) for stream_type in STREAM_TYPES]


if __name__ == "__main__":
    TapSessionReports.cli()
