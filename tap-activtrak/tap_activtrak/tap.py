"""tap-activtrak: the ActivTrak Live Data API as Singer streams."""

from __future__ import annotations

import datetime as dt
import sys
import typing as t

from singer_sdk import Tap
from singer_sdk import typing as th
from singer_sdk.contrib.msgspec import MsgSpecWriter
from singer_sdk.exceptions import ConfigValidationError
from singer_sdk.singerlib import RecordMessage

from tap_activtrak.client import DEFAULT_TIMEZONE, server_zone
from tap_activtrak.streams import STREAM_TYPES

DEFAULT_API_URL = "https://api.activtrak.com"
ENTITY_SETTINGS = ("user_id", "group_id", "computer_id")


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


class TapActivTrak(Tap):
    """ActivTrak: activity log (cursor) and working hours (users, computers)."""

    name = "tap-activtrak"
    message_writer_class = RecordBufferingWriter

    config_jsonschema = th.PropertiesList(
        th.Property("api_token", th.StringType, required=True, secret=True,
                    description="The Live Data API bearer token of the account."),
        th.Property("api_url", th.StringType, default=DEFAULT_API_URL,
                    description="Root of the ActivTrak API."),
        th.Property("start_date", th.DateTimeType,
                    description="Where the first sync starts (ISO date or date-time, UTC); default 30 days ago, UTC."),
        th.Property("end_date", th.DateTimeType,
                    description="Optional last day to sync (UTC, inclusive), for backfills."),
        th.Property("timezone", th.StringType, default=DEFAULT_TIMEZONE,
                    description="IANA name of the zone the ActivTrak server's clock reads its date-times "
                                "without an offset in (e.g. America/New_York); records are emitted in UTC "
                                "and the days requested are converted to it. Default UTC."),
        th.Property("user_id", th.IntegerType, description="Only this user's data."),
        th.Property("group_id", th.IntegerType, description="Only this group's data."),
        th.Property("computer_id", th.IntegerType,
                    description="Only this computer's data. At most one of user_id, group_id, computer_id."),
        th.Property("lookback_days", th.IntegerType, default=2,
                    description="Working-hours days re-read on each sync (recent days keep changing)."),
        th.Property("window_days", th.IntegerType, default=1,
                    description="Days per working-hours request; the bookmark advances per window."),
        th.Property("paths", th.ObjectType(additional_properties=th.StringType),
                    description="Stream name to URL path, overriding the documented paths."),
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
        if schema is None:  # the types are right: the checks the schema cannot make
            errors = [*errors, *check_config(self._config)]
        token = str(self._config.get("api_token") or "")
        if len(token) >= 3:
            errors = [error.replace(token, "<api_token>") for error in errors]
        if errors and (schema is not None or raise_errors):
            raise ConfigValidationError("Config validation failed", errors=errors, schema=schema) from None
        return errors

    def discover_streams(self) -> list:
        return [stream_type(tap=self) for stream_type in STREAM_TYPES]


def check_config(config: t.Mapping[str, t.Any]) -> list[str]:
    """What the JSON schema cannot say about a config, as readable errors."""
    errors = []
    if "api_token" in config and not str(config["api_token"]).strip():
        errors.append("api_token is empty: set the account's Live Data API token")
    chosen = [name for name in ENTITY_SETTINGS if config.get(name) is not None]
    if len(chosen) > 1:
        errors.append(
            f"Only one of user_id, group_id, computer_id may be set (the API accepts one per request); got {', '.join(chosen)}"
        )
    for name in ("start_date", "end_date"):
        value = config.get(name)
        if value:
            try:
                dt.date.fromisoformat(str(value)[:10])
            except ValueError:
                errors.append(f"{name} {value!r} is not an ISO date (YYYY-MM-DD or a date-time)")
    if config.get("start_date") and config.get("end_date") and str(config["end_date"])[:10] < str(config["start_date"])[:10]:
        errors.append("end_date is before start_date")
    try:
        server_zone(config.get("timezone"))
    except ValueError as exc:
        errors.append(str(exc))
    url = str(config.get("api_url") or DEFAULT_API_URL)
    if not url.startswith(("http://", "https://")):
        errors.append(f"api_url {url!r} must start with https:// (or http://)")
    if int(config.get("lookback_days", 2)) < 0:
        errors.append("lookback_days must be 0 or more")
    if int(config.get("window_days", 1)) < 1:
        errors.append("window_days must be 1 or more")
    if int(config.get("max_retries", 5)) < 1:
        errors.append("max_retries must be 1 or more")
    if float(config.get("request_timeout", 300)) <= 0:
        errors.append("request_timeout must be more than 0 seconds")
    return errors


if __name__ == "__main__":
    TapActivTrak.cli()
