"""The ActivTrak base stream: auth, transport, retries, envelope and errors."""

from __future__ import annotations

import datetime as dt
import json
import typing as t
from functools import cached_property
from urllib.parse import urlparse
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import requests
from singer_sdk import RESTStream
from singer_sdk.authenticators import BearerTokenAuthenticator
from singer_sdk.exceptions import FatalAPIError, RetriableAPIError
from singer_sdk.helpers._util import utc_now
from singer_sdk.helpers.conform import TypeConformanceLevel
from singer_sdk.singerlib import RecordMessage

UTC = dt.timezone.utc
RETRY_STATUSES = (429,)
MAX_RETRY_AFTER = 600.0
DEFAULT_START_DAYS_AGO = 30
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


class FastRecordMessages:
    """RECORD messages without singer-sdk's per-record walk for deselected
    properties when nothing is deselected and types are not conformed again:
    the walk recurses into the `extra` object of every record for nothing.
    Stream maps still apply; with any property deselected, the SDK's own path
    runs. Measured in tests/bench/bench_activtrak.py."""

    def _generate_record_messages(self, record: dict) -> t.Iterator[RecordMessage]:
        fast = self.__dict__.get("_fast_records")
        if fast is None:
            fast = self._fast_records = (
                self.TYPE_CONFORMANCE_LEVEL == TypeConformanceLevel.NONE and all(self.mask.values()))
        if not fast:
            yield from super()._generate_record_messages(record)  # type: ignore[misc]
            return
        for stream_map in self.stream_maps:
            mapped = stream_map.transform(record)
            if mapped is not None:
                yield RecordMessage(stream=stream_map.stream_alias, record=mapped,
                                    version=self._stream_version, time_extracted=utc_now())


class ActivTrakStream(FastRecordMessages, RESTStream):
    """Shared behaviour of every ActivTrak endpoint."""

    extra_retry_statuses = RETRY_STATUSES
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
        return server_zone(self.config.get("timezone"))

    @cached_property
    def _declared(self) -> frozenset[str]:
        """The declared fields taken from the row as the API sent it."""
        return frozenset(self.schema["properties"]) - {EXTRA} - self.computed_fields

    @property
    def start_instant(self) -> dt.datetime:
        """``start_date`` (UTC; a date is its midnight UTC), or midnight UTC 30 days ago."""
        configured = self.config.get("start_date")
        if configured:
            return config_instant(configured)
        today = dt.datetime.now(UTC).date() - dt.timedelta(days=DEFAULT_START_DAYS_AGO)
        return dt.datetime.combine(today, dt.time(), UTC)

    @property
    def start_date(self) -> dt.date:
        """The server's day at ``start_date`` (30 days ago when it is not set)."""
        return local_day(self.start_instant, self.zone)

    @property
    def end_day(self) -> dt.date | None:
        """The server's last day to read with ``end_date`` (a day, inclusive, in
        UTC): the server's day at the last instant of that UTC day."""
        end = self.config.get("end_date")
        if not end:
            return None
        day = dt.date.fromisoformat(str(end)[:10])
        last = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), UTC) - dt.timedelta(microseconds=1)
        return local_day(last, self.zone)

    def get_starting_timestamp(self, context: dict | None) -> dt.datetime | None:
        started = super().get_starting_timestamp(context)
        if started is None:
            return self.start_instant
        return started if started.tzinfo is not None else started.replace(tzinfo=UTC)

    @property
    def url_base(self) -> str:
        return self.config["api_url"].rstrip("/")

    @property
    def path(self) -> str:  # type: ignore[override]
        return (self.config.get("paths") or {}).get(self.name, self.default_path)

    @cached_property
    def authenticator(self) -> BearerTokenAuthenticator:
        return BearerTokenAuthenticator(token=self.config["api_token"])

    @property
    def requests_session(self) -> requests.Session:
        session = super().requests_session
        session.verify = self.config.get("ca_bundle") or self.config.get("verify_ssl", True)
        return session

    @property
    def timeout(self) -> float:  # type: ignore[override]
        return float(self.config.get("request_timeout", 300))

    # -------------------------------------------------------------- retries
    def backoff_max_tries(self) -> int:
        return int(self.config.get("max_retries", 5))

    def backoff_wait_generator(self) -> t.Generator[float, t.Any, None]:  # type: ignore[override]
        """Wait what Retry-After asks, else an exponential backoff."""
        base = float(self.config.get("retry_backoff_seconds", 2))
        attempt = 0
        exception = yield  # type: ignore[misc]
        while True:
            wait = _retry_after(exception)
            if wait is None:
                wait = base * 2**attempt
            attempt += 1
            exception = yield wait

    def backoff_jitter(self, value: float) -> float:
        return value  # Retry-After is the vendor's wish: wait exactly that

    def validate_response(self, response: requests.Response) -> None:
        status = response.status_code
        if status in self.extra_retry_statuses or status >= 500:
            raise RetriableAPIError(self.response_error_message(response), response)
        if 400 <= status < 500:
            raise ActivTrakAPIError(self.response_error_message(response))

    def response_error_message(self, response: requests.Response) -> str:
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
    def parse_response(self, response: requests.Response) -> t.Iterable[dict]:
        yield from payload_of(response)["activity"]

    def post_process(self, row: dict, context: dict | None = None) -> dict | None:
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

    def generate_child_contexts(self, record: dict, context: dict | None) -> t.Iterable[dict | None]:
        """None: no ActivTrak stream has children (singer-sdk's default copies
        every record as a child context)."""
        return ()

    def entity_filter(self) -> dict[str, int]:
        """The one user/group/computer filter the API allows, if set."""
        for setting, param in (("user_id", "userId"), ("group_id", "groupId"), ("computer_id", "computerId")):
            if self.config.get(setting) is not None:
                return {param: int(self.config[setting])}
        return {}


def config_instant(value: t.Any) -> dt.datetime:
    """A start_date/end_date setting as an aware UTC datetime (a date, or a
    date-time without an offset, is UTC)."""
    text = str(value)
    try:
        parsed = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        parsed = dt.datetime.combine(dt.date.fromisoformat(text[:10]), dt.time())
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def _retry_after(exception: BaseException | None) -> float | None:
    response = getattr(exception, "response", None)
    if response is None:
        return None
    header = response.headers.get("Retry-After")
    if not header:
        return None
    try:
        return min(max(float(header), 0.0), MAX_RETRY_AFTER)
    except ValueError:
        try:
            when = dt.datetime.strptime(header, "%a, %d %b %Y %H:%M:%S GMT").replace(tzinfo=dt.timezone.utc)
        except ValueError:
            return None
        return min(max((when - dt.datetime.now(dt.timezone.utc)).total_seconds(), 0.0), MAX_RETRY_AFTER)
