"""tap-ekran: the Ekran System sessions API as a Singer stream."""

from __future__ import annotations

import os
import sys
import typing as t

from singer_sdk import Tap
from singer_sdk import typing as th
from singer_sdk.contrib.msgspec import MsgSpecWriter
from singer_sdk.exceptions import ConfigValidationError
from singer_sdk.singerlib import RecordMessage

from tap_ekran.client import DEFAULT_TIMEZONE, MAX_SESSION_COUNT, parse_datetime, server_zone
from tap_ekran.streams import STREAM_TYPES

SECRET_SETTINGS = ("api_token",)
STREAM_NAMES = tuple(stream_type.name for stream_type in STREAM_TYPES)


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


class TapEkran(Tap):
    """Ekran System (self-hosted): sessions with their durations, incrementally."""

    name = "tap-ekran"
    message_writer_class = RecordBufferingWriter

    config_jsonschema = th.PropertiesList(
        th.Property("api_url", th.StringType, required=True,
                    description="Root of your Ekran server, e.g. https://ekran.example.com "
                                "(the sessions API is not available in Ekran SaaS)."),
        th.Property("api_token", th.StringType, required=True, secret=True,
                    description="The Ekran API key, sent as the ApiKey header."),
        th.Property("start_date", th.DateTimeType,
                    description="Where the first sync starts (ISO date or date-time, UTC); "
                                "default 30 days ago, at midnight UTC."),
        th.Property("end_date", th.DateTimeType,
                    description="Optional end of the synced period (UTC, exclusive: sessions that logged in "
                                "before it), for backfills; default: now."),
        th.Property("timezone", th.StringType, default=DEFAULT_TIMEZONE,
                    description="IANA name of the zone the Ekran server's clock reads times without an offset "
                                "in (e.g. America/New_York): its session times, and the start the tap sends. "
                                "Records are emitted in UTC. Default UTC."),
        th.Property("lookback_hours", th.NumberType, default=1,
                    description="Hours before the bookmark re-read on every sync, for sessions the "
                                "server learns of late and for clock differences."),
        th.Property("open_session_hold_hours", th.NumberType, default=24,
                    description="A session still open holds the bookmark at its loginDate for at most "
                                "this many hours after its login (0: open sessions never hold it)."),
        th.Property("page_size", th.IntegerType, default=MAX_SESSION_COUNT,
                    description=f"sessionCount per request, 1 to {MAX_SESSION_COUNT} (the API's maximum)."),
        th.Property("paths", th.ObjectType(additional_properties=th.StringType),
                    description="Stream name to URL path, overriding the documented /ekranapi/sessions."),
        th.Property("request_timeout", th.NumberType, default=300,
                    description="Seconds before a request times out (it is then retried)."),
        th.Property("max_retries", th.IntegerType, default=5,
                    description="Attempts per request on 429, 5xx, timeouts and dropped connections."),
        th.Property("retry_backoff_seconds", th.NumberType, default=2,
                    description="First wait between retries, doubled each time; Retry-After wins when sent."),
        th.Property("verify_ssl", th.BooleanType, default=True,
                    description="Verify the server's TLS certificate."),
        th.Property("ca_bundle", th.StringType,
                    description="Path of a CA bundle (PEM) to verify a server certificate signed by a private CA."),
    ).to_dict()

    def _validate_config(self, *, raise_errors: bool = True) -> list[str]:
        """singer-sdk's schema check and `check_config`, every error at once,
        before any request.

        Schema errors may quote a value (``12345 is not of type 'string'``), so
        secret values are masked in them. The schema's required settings are
        only enforced when syncing (singer-sdk lets --discover run without
        them); the errors of `check_config` always stop the tap.
        """
        schema = None
        try:
            schema_errors = super()._validate_config(raise_errors=raise_errors)
        except ConfigValidationError as exc:
            schema_errors, schema = list(exc.errors), exc.schema
        own_errors = check_config(self._config)
        if own_errors or schema is not None:
            raise ConfigValidationError(
                "Config validation failed", errors=self._mask_secrets([*schema_errors, *own_errors]), schema=schema,
            ) from None
        return self._mask_secrets(schema_errors)

    def _mask_secrets(self, errors: t.Iterable[str]) -> list[str]:
        secrets = [str(self._config[name]) for name in SECRET_SETTINGS if self._config.get(name) not in (None, "")]
        masked = []
        for error in errors:
            for secret in secrets:
                error = error.replace(secret, "***")
            masked.append(error)
        return masked

    def discover_streams(self) -> list:
        return [stream_type(tap=self) for stream_type in STREAM_TYPES]


def check_config(config: t.Mapping[str, t.Any]) -> list[str]:
    """What the JSON schema cannot say about a config, as errors that name the
    setting (and never echo the API key)."""
    errors: list[str] = []

    token = config.get("api_token")
    if token is not None and not str(token).strip():
        errors.append("api_token is empty: set the Ekran API key")

    url = str(config.get("api_url") or "")
    if url and not url.startswith(("https://", "http://")):
        errors.append(f"api_url {url!r} must start with https:// (the root of your Ekran server)")

    dates = {}
    for name in ("start_date", "end_date"):
        value = config.get(name)
        if value:
            dates[name] = parse_datetime(str(value))
            if dates[name] is None:
                errors.append(f"{name} {value!r} is not an ISO 8601 date or date-time")
    if dates.get("start_date") and dates.get("end_date") and dates["end_date"] <= dates["start_date"]:
        errors.append("end_date must be after start_date")

    try:
        server_zone(config.get("timezone"))
    except ValueError as exc:
        errors.append(str(exc))

    def number(name: str, default: float) -> float | None:
        try:
            return float(config.get(name, default))
        except (TypeError, ValueError):
            errors.append(f"{name} must be a number")
            return None

    for name, default in (("lookback_hours", 1), ("open_session_hold_hours", 24)):
        value = number(name, default)
        if value is not None and value < 0:
            errors.append(f"{name} must be 0 or more")
    timeout = number("request_timeout", 300)
    if timeout is not None and timeout <= 0:
        errors.append("request_timeout must be more than 0 seconds")
    backoff = number("retry_backoff_seconds", 2)
    if backoff is not None and backoff < 0:
        errors.append("retry_backoff_seconds must be 0 or more")

    page_size = config.get("page_size", MAX_SESSION_COUNT)
    if not isinstance(page_size, int) or not 1 <= page_size <= MAX_SESSION_COUNT:
        errors.append(
            f"page_size must be 1 to {MAX_SESSION_COUNT} (the sessionCount of each request; the API "
            f"answers 400 above {MAX_SESSION_COUNT}); got {page_size!r}"
        )
    retries = config.get("max_retries", 5)
    if not isinstance(retries, int) or retries < 1:
        errors.append(f"max_retries must be 1 or more; got {retries!r}")

    unknown = sorted(set(config.get("paths") or {}) - set(STREAM_NAMES))
    if unknown:
        errors.append(f"paths names unknown streams {unknown}; known: {list(STREAM_NAMES)}")

    bundle = config.get("ca_bundle")
    if bundle and not os.path.isfile(str(bundle)):
        errors.append(f"ca_bundle {bundle!r} is not a readable file")
    return errors


if __name__ == "__main__":
    TapEkran.cli()
