"""The ActivTrak base stream: auth, transport, retries, envelope and errors."""

from __future__ import annotations

import datetime as dt
import json
import typing as t
from functools import cached_property
from urllib.parse import urlparse
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from singer_sdk import RESTStream
from singer_sdk.authenticators import BearerTokenAuthenticator
from singer_sdk.exceptions import FatalAPIError
from singer_sdk.helpers.conform import TypeConformanceLevel
from typing_extensions import override

from tap_activtrak import period
from tap_activtrak._sdk import FastRecordMessages
from tap_activtrak.streamrules import StreamRules

if t.TYPE_CHECKING:
    import requests
    from singer_sdk.helpers.types import Context

UTC = dt.timezone.utc
EXTRA = "extra"  # the declared object column holding every undeclared field
DEFAULT_TIMEZONE = "UTC"


def server_zone(name: t.Any) -> dt.tzinfo:
    """The zone of the `timezone` setting (an IANA name): how the server's
    clock reads the date-times it writes without an offset.

    Raises ValueError for a name that is not a known zone."""
    name = DEFAULT_TIMEZONE if name in (None, "") else name
    if not isinstance(name, str):
        raise ValueError(f"timezone {name!r} is not an IANA time zone name")
    if name.upper() in ("UTC", "ETC/UTC", "Z"):
        return UTC
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise ValueError(f"timezone {name!r} is not a known IANA time zone name (e.g. UTC, America/New_York)") from None


class ActivTrakAPIError(FatalAPIError):
    """The API answered something the tap cannot use."""


def payload_of(response: requests.Response) -> dict:
    """The response's JSON envelope ``{"activity": [...], ...}``, parsed once.

    A body that is not JSON, or not that envelope, is an error: a page the tap
    cannot read is never skipped silently.
    """
    cached = getattr(response, "_activtrak_payload", None)
    if cached is not None:
        return cached
    path = urlparse(response.url).path
    try:
        payload = json.loads(response.content)
    except ValueError as exc:
        snippet = response.content[:200].decode("utf-8", "replace")
        raise ActivTrakAPIError(
            f"ActivTrak answered {path} with a body that is not JSON ({exc}): {snippet!r}"
        ) from exc
    if not isinstance(payload, dict) or not isinstance(payload.get("activity"), list):
        raise ActivTrakAPIError(
            f"ActivTrak answered {path} without the documented 'activity' list: "
            f"{str(payload)[:200]!r}"
        )
    response._activtrak_payload = payload  # type: ignore[attr-defined]
    return payload


def utc_iso(value: t.Any, zone: dt.tzinfo = UTC) -> t.Any:
    """An ActivTrak date-time as ISO 8601 in UTC; None where it does not parse.

    A value without an offset (the API's usual ``2026-01-05T08:12:00``) is a
    time on the server's clock, ``zone``; one with an offset is converted."""
    if value.__class__ is not str or not value:
        return None
    if zone is UTC and len(value) == 19 and value[10] == "T" and value[13] == ":":  # the usual naive form
        return value + "+00:00"
    try:
        parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=zone)
    return parsed.astimezone(UTC).isoformat()


def local_day(instant: dt.datetime, zone: dt.tzinfo) -> dt.date:
    """The server's day (on its clock, ``zone``) at ``instant``."""
    if instant.tzinfo is None:
        instant = instant.replace(tzinfo=UTC)
    return instant.astimezone(zone).date()


class ActivTrakStream(StreamRules, FastRecordMessages, RESTStream):
    """Shared behaviour of every ActivTrak endpoint (BATCH, retries, TLS, timeout, api_url: ``StreamRules``)."""

    # The API's JSON already has the declared types and post_process makes the
    # date-times UTC; conforming every field again costs ~40% of the CPU.
    TYPE_CONFORMANCE_LEVEL = TypeConformanceLevel.NONE
    #: fields converted to UTC ISO 8601 date-times
    datetime_fields: tuple[str, ...] = ()
    #: the default path, overridable through the `paths` setting
    default_path: str = ""
    page_size = 1000
    #: declared fields the tap computes; a field of the same name in a row is kept in ``extra``
    computed_fields: frozenset[str] = frozenset()

    @cached_property
    def zone(self) -> dt.tzinfo:
        """The server's clock (the `timezone` setting, validated before any request)."""
        return server_zone(self.config["timezone"])

    @cached_property
    def _declared(self) -> frozenset[str]:
        """The declared fields taken from the row as the API sent it."""
        return frozenset(self.schema["properties"]) - {EXTRA} - self.computed_fields

    @property
    def start_instant(self) -> dt.datetime:
        """``start_date`` (UTC; a date is its midnight UTC), or midnight UTC 30 days ago."""
        return period.start_instant(self.config, dt.datetime.now(UTC))

    @property
    def start_date(self) -> dt.date:
        """The server's day at ``start_date`` (30 days ago when it is not set)."""
        return local_day(self.start_instant, self.zone)

    @cached_property
    def end_instant(self) -> dt.datetime | None:
        """Where ``end_date`` ends the synced period, exclusive (a date: the
        midnight UTC after it); None without an end_date."""
        return period.end_instant(self.config)

    @property
    def end_day(self) -> dt.date | None:
        """The server's last day that starts before ``end_instant`` (its clock
        is `timezone`), for the endpoints that take whole days."""
        end = self.end_instant
        return None if end is None else local_day(end - dt.timedelta(microseconds=1), self.zone)

    @override
    def get_starting_timestamp(self, context: Context | None) -> dt.datetime | None:
        started = super().get_starting_timestamp(context)
        if started is None:
            return self.start_instant
        return started if started.tzinfo is not None else started.replace(tzinfo=UTC)

    # path stays per tap (StreamRules has none): the taps read ``paths`` differently;
    # here any entry replaces default_path, an empty one too (the schema takes any string)
    @property
    @override
    def path(self) -> str:  # type: ignore[override]
        return (self.config.get("paths") or {}).get(self.name, self.default_path)

    @cached_property
    @override
    def authenticator(self) -> BearerTokenAuthenticator:
        return BearerTokenAuthenticator(token=self.config["api_token"])

    # -------------------------------------------------------------- errors
    # singer-sdk's validate_response classifies: 429 and 5xx are retried
    # (StreamRules: how long between attempts), every other 4xx fails at once.
    @override
    def response_error_message(self, response: requests.Response) -> str:
        """The API's own ``message`` (its error payload), the path and a hint for a 401."""
        path = urlparse(response.url).path
        detail = response.text[:500].strip()
        try:
            body = response.json()
            if isinstance(body, dict):
                detail = str(body.get("message") or body.get("error") or body)
        except ValueError:
            pass
        hint = ""
        if response.status_code == 401:
            hint = " (check the api_token setting)"
        return f"ActivTrak {path} answered {response.status_code} {response.reason}: {detail}{hint}"

    # -------------------------------------------------------------- records
    @override
    def parse_response(self, response: requests.Response) -> t.Iterable[dict]:
        yield from payload_of(response)["activity"]

    @override
    def post_process(self, row: dict, context: Context | None = None) -> dict | None:
        """Declared fields at the top, date-times in UTC, every other field in
        ``extra`` (a date-time that does not parse is null, its text in ``extra``)."""
        unknown = row.keys() - self._declared
        extra = {key: row.pop(key) for key in unknown} if unknown else {}
        zone = self.zone
        get = row.get
        for field in self.datetime_fields:
            value = get(field)
            if value is not None:
                converted = row[field] = utc_iso(value, zone)
                if converted is None:
                    extra[field] = value
        row[EXTRA] = extra
        return row

    @override
    def generate_child_contexts(self, record: dict, context: Context | None) -> t.Iterable[Context | None]:
        """None: no ActivTrak stream has children (singer-sdk's default copies
        every record as a child context)."""
        return ()

    def entity_filter(self) -> dict[str, int]:
        """The one user/group/computer filter the API allows, if set."""
        for setting, param in (("user_id", "userId"), ("group_id", "groupId"), ("computer_id", "computerId")):
            if self.config.get(setting) is not None:
                return {param: int(self.config[setting])}
        return {}
