"""tap-activtrak: the ActivTrak Live Data API as Singer streams."""

from __future__ import annotations

import sys
import typing as t

from singer_sdk import Tap
from singer_sdk import typing as th
from singer_sdk.contrib.msgspec import MsgSpecWriter
from singer_sdk.singerlib import RecordMessage
from typing_extensions import override

from tap_activtrak import period
from tap_activtrak._sdk import CheckedConfig
from tap_activtrak.client import DEFAULT_TIMEZONE, server_zone
from tap_activtrak.streams import STREAM_TYPES

if t.TYPE_CHECKING:
    from singer_sdk import Stream

DEFAULT_API_URL = "https://api.activtrak.com"
ENTITY_SETTINGS = ("user_id", "group_id", "computer_id")
# the same words for the same setting in every tap of this repository
START_TEXT = (
    "Where the first sync starts, inclusive: an ISO date (its midnight) or date-time, UTC unless it "
    "carries an offset. Default: 30 days before today, at midnight UTC."
)
END_TEXT = (
    "Optional end of the synced period, exclusive, for backfills: a date-time ends it at that instant, "
    "an ISO date at the midnight after that day (so that day is synced). UTC unless it carries an offset. "
    "Streams read by whole days read every day that starts before it. Default: none (up to now)."
)
WINDOW_TEXT = "Days per request; the bookmark advances after each window."
LOOKBACK_TEXT = (
    "Days before the bookmark that every incremental sync reads again, because the vendor still "
    "changes recent data (rows read again are upserted by key)."
)
ACTIVATE_TEXT = (
    "Emit ACTIVATE_VERSION messages for full-table streams, so that a loader that reads them "
    "(e.g. target-postgres with activate_version) marks or removes rows gone at the vendor."
)


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


class TapActivTrak(CheckedConfig, Tap):
    """ActivTrak: activity log (cursor) and working hours (users, computers)."""

    name = "tap-activtrak"
    SECRET_SETTINGS = ("api_token",)
    message_writer_class = RecordBufferingWriter

    config_jsonschema = th.PropertiesList(
        th.Property("api_token", th.StringType(pattern=r"\S"), required=True, secret=True,
                    description="The Live Data API bearer token of the account."),
        th.Property("api_url", th.URIType(pattern=r"^https?://"), default=DEFAULT_API_URL,
                    description="Root of the ActivTrak API (https://, or http://)."),
        th.Property("start_date", th.DateTimeType, description=START_TEXT),
        th.Property("end_date", th.DateTimeType, description=END_TEXT),
        th.Property("timezone", th.StringType, default=DEFAULT_TIMEZONE,
                    description="IANA name of the zone the ActivTrak server's clock reads its date-times "
                                "without an offset in (e.g. America/New_York); records are emitted in UTC "
                                "and the days requested are converted to it. Default UTC."),
        th.Property("user_id", th.IntegerType, description="Only this user's data."),
        th.Property("group_id", th.IntegerType, description="Only this group's data."),
        th.Property("computer_id", th.IntegerType,
                    description="Only this computer's data. At most one of user_id, group_id, computer_id."),
        th.Property("lookback_days", th.IntegerType(minimum=0), default=1, description=LOOKBACK_TEXT),
        th.Property("window_days", th.IntegerType(minimum=1), default=1, description=WINDOW_TEXT),
        th.Property("paths", th.ObjectType(additional_properties=th.StringType),
                    description="Stream name to URL path, overriding the documented paths."),
        th.Property("request_timeout", th.NumberType(exclusive_minimum=0), default=300,
                    description="Seconds before a request times out (it is then retried)."),
        th.Property("max_retries", th.IntegerType(minimum=1), default=5,
                    description="Attempts per request on 429, 5xx, timeouts and dropped connections."),
        th.Property("retry_backoff_seconds", th.NumberType(minimum=0), default=2,
                    description="First wait between retries, doubled each time (one wait is at most "
                                "600 seconds); Retry-After wins when sent."),
        th.Property("verify_ssl", th.BooleanType, default=True,
                    description="Verify the server's TLS certificate."),
        th.Property("ca_bundle", th.StringType,
                    description="Path of a CA bundle to verify the server's certificate with."),
        th.Property("emit_activate_version_messages", th.BooleanType, default=False, description=ACTIVATE_TEXT),
    ).to_dict()

    @override
    def check_config(self, config: t.Mapping[str, t.Any]) -> list[str]:
        """The rules the JSON schema cannot state, as readable errors: one
        setting against another, and the values singer-sdk's config check
        reads no format of (the dates, the time zone name)."""
        errors = []
        chosen = [name for name in ENTITY_SETTINGS if config.get(name) is not None]
        if len(chosen) > 1:
            errors.append(
                "Only one of user_id, group_id, computer_id may be set (the API accepts one per request); "
                f"got {', '.join(chosen)}"
            )
        bounds = {}
        for name in ("start_date", "end_date"):
            if config.get(name):
                try:
                    read = period.parse_end if name == "end_date" else period.parse_instant
                    bounds[name] = read(config[name])
                except ValueError:
                    errors.append(f"{name} {config[name]!r} is not an ISO date (YYYY-MM-DD) or date-time")
        start, end = bounds.get("start_date"), bounds.get("end_date")
        if start is not None and end is not None and end <= start:
            errors.append("end_date must be after start_date (an end_date date ends at the midnight after it)")
        try:
            server_zone(config["timezone"])
        except ValueError as exc:
            errors.append(str(exc))
        return errors

    @override
    def discover_streams(self) -> list[Stream]:
        return [stream_type(tap=self) for stream_type in STREAM_TYPES]


if __name__ == "__main__":
    TapActivTrak.cli()
