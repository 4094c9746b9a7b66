"""tap-ekran: the Ekran System sessions API as a Singer stream."""

from __future__ import annotations

import os
import sys
import typing as t

from singer_sdk import Tap
from singer_sdk import typing as th
from singer_sdk.contrib.msgspec import MsgSpecWriter
from singer_sdk.singerlib import RecordMessage
from typing_extensions import override

from tap_ekran import period
from tap_ekran._sdk import CheckedConfig
from tap_ekran.client import (
    DEFAULT_TIMEZONE,
    MAX_SESSION_COUNT,
    parse_datetime,
    server_zone,
)
from tap_ekran.streams import STREAM_TYPES

STREAM_NAMES = tuple(stream_type.name for stream_type in STREAM_TYPES)
#: start_date / end_date: an ISO date, optionally followed by a time (the calendar is checked by check_config)
ISO_DATE = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}([T ][0-9:.]+(Z|[+-][0-9]{2}:?[0-9]{2})?)?$"
START_TEXT = ("Where the first sync starts, inclusive: an ISO date (its midnight) or date-time, UTC unless it "
              "carries an offset. Default: 30 days before today, at midnight UTC.")
END_TEXT = ("Optional end of the synced period, exclusive, for backfills: a date-time ends it at that instant, "
            "an ISO date at the midnight after that day (so that day is synced). UTC unless it carries an offset. "
            "Streams read by whole days read every day that starts before it. Default: none (up to now).")
LOOKBACK_TEXT = ("Hours before the bookmark that every incremental sync reads again, because the vendor still "
                 "changes recent data (rows read again are upserted by key).")
ACTIVATE_TEXT = ("Emit ACTIVATE_VERSION messages for full-table streams, so that a loader that reads them "
                 "(e.g. target-postgres with activate_version) marks or removes rows gone at the vendor.")


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


class TapEkran(CheckedConfig, Tap):
    """Ekran System (self-hosted): sessions with their durations, incrementally."""

    name = "tap-ekran"
    SECRET_SETTINGS = ("api_token",)
    message_writer_class = RecordBufferingWriter

    config_jsonschema = th.PropertiesList(
        th.Property("api_url", th.StringType(pattern=r"^https?://"), required=True,
                    description="Root of your Ekran server, e.g. https://ekran.example.com "
                                "(the sessions API is not available in Ekran SaaS)."),
        th.Property("api_token", th.StringType, required=True, secret=True,
                    description="The Ekran API key, sent as the ApiKey header."),
        th.Property("start_date", th.DateTimeType(pattern=ISO_DATE), description=START_TEXT),
        th.Property("end_date", th.DateTimeType(pattern=ISO_DATE), description=END_TEXT),
        th.Property("timezone", th.StringType, default=DEFAULT_TIMEZONE,
                    description="IANA name of the zone the Ekran server's clock reads times without an offset "
                                "in (e.g. America/New_York): its session times, and the start the tap sends. "
                                "Records are emitted in UTC. Default UTC."),
        th.Property("lookback_hours", th.NumberType(minimum=0), default=1, description=LOOKBACK_TEXT),
        th.Property("open_session_hold_hours", th.NumberType(minimum=0), default=24,
                    description="A session still open holds the bookmark at its loginDate for at most "
                                "this many hours after its login (0: open sessions never hold it)."),
        th.Property("page_size", th.IntegerType(minimum=1, maximum=MAX_SESSION_COUNT), default=MAX_SESSION_COUNT,
                    description=f"sessionCount per request, 1 to {MAX_SESSION_COUNT} (the API's maximum; "
                                "it answers 400 above)."),
        th.Property("paths", th.ObjectType(*(th.Property(name, th.StringType) for name in STREAM_NAMES),
                                           additional_properties=False),
                    description="Stream name to URL path, overriding the documented /ekranapi/sessions."),
        th.Property("request_timeout", th.NumberType(exclusive_minimum=0), default=300,
                    description="Seconds before a request times out (it is then retried)."),
        th.Property("max_retries", th.IntegerType(minimum=1), default=5,
                    description="Attempts per request on 429, 5xx, timeouts and dropped connections."),
        th.Property("retry_backoff_seconds", th.NumberType(minimum=0), default=2,
                    description="First wait between retries, doubled each time (at most 600 seconds); "
                                "Retry-After wins when sent."),
        th.Property("verify_ssl", th.BooleanType, default=True,
                    description="Verify the server's TLS certificate."),
        th.Property("ca_bundle", th.StringType,
                    description="Path of a CA bundle (PEM) to verify a server certificate signed by a private CA."),
        th.Property("emit_activate_version_messages", th.BooleanType, default=False, description=ACTIVATE_TEXT),
    ).to_dict()

    @override
    def check_config(self, config: t.Mapping[str, t.Any]) -> list[str]:
        return check_config(config)

    @override
    def discover_streams(self) -> list:
        return [stream_type(tap=self) for stream_type in STREAM_TYPES]


def check_config(config: t.Mapping[str, t.Any]) -> list[str]:
    """What the JSON schema cannot say about a config (its types, ranges and
    forms are right), as errors that name the setting (and never echo the
    API key)."""
    errors: list[str] = []

    token = config.get("api_token")
    if token is not None and not str(token).strip():
        errors.append("api_token is empty: set the Ekran API key")

    dates = {}
    for name in ("start_date", "end_date"):  # the schema's pattern checks the form, not the calendar
        value = config.get(name)
        if value:
            dates[name] = parse_datetime(str(value))
            if dates[name] is None:
                errors.append(f"{name} {value!r} is not an ISO 8601 date or date-time")
    start, end = dates.get("start_date"), period.end_instant(config) if dates.get("end_date") else None
    if start is not None and end is not None and end <= start:
        errors.append(f"end_date {config['end_date']!r} (exclusive) is not after start_date "
                      f"{config['start_date']!r}: the synced period would be empty")

    try:
        server_zone(config.get("timezone"))
    except ValueError as exc:
        errors.append(str(exc))

    bundle = config.get("ca_bundle")
    if bundle and not os.path.isfile(str(bundle)):
        errors.append(f"ca_bundle {bundle!r} is not a readable file")
    return errors


if __name__ == "__main__":
    TapEkran.cli()
