"""The ActivTrak base stream: auth, transport, retries, envelope and errors."""

from __future__ import annotations

import datetime as dt
import json
import typing as t
from functools import cached_property
from urllib.parse import urlparse

import requests
from singer_sdk import RESTStream
from singer_sdk.authenticators import BearerTokenAuthenticator
from singer_sdk.exceptions import FatalAPIError, RetriableAPIError
from singer_sdk.helpers.conform import TypeConformanceLevel

RETRY_STATUSES = (429,)
MAX_RETRY_AFTER = 600.0
DEFAULT_START_DAYS_AGO = 30


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


def utc_iso(value: t.Any) -> t.Any:
    """An ActivTrak date-time as ISO 8601 in UTC (naive values are UTC)."""
    if not isinstance(value, str) or not value:
        return value
    if len(value) == 19 and value[10] == "T":  # the API's usual naive form
        return value + "+00:00"
    try:
        parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return value
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=dt.timezone.utc).isoformat()
    return parsed.astimezone(dt.timezone.utc).isoformat()


class ActivTrakStream(RESTStream):
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

    @property
    def start_date(self) -> dt.date:
        """``start_date``, or 30 days ago (UTC) when it is not set."""
        configured = self.config.get("start_date")
        if configured:
            return dt.date.fromisoformat(str(configured)[:10])
        return dt.datetime.now(dt.timezone.utc).date() - dt.timedelta(days=DEFAULT_START_DAYS_AGO)

    def get_starting_timestamp(self, context: dict | None) -> dt.datetime | None:
        started = super().get_starting_timestamp(context)
        if started is None:
            return dt.datetime.combine(self.start_date, dt.time(), dt.timezone.utc)
        return started

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
        for field in self.datetime_fields:
            if field in row:
                row[field] = utc_iso(row[field])
        return row

    def entity_filter(self) -> dict[str, int]:
        """The one user/group/computer filter the API allows, if set."""
        for setting, param in (("user_id", "userId"), ("group_id", "groupId"), ("computer_id", "computerId")):
            if self.config.get(setting) is not None:
                return {param: int(self.config[setting])}
        return {}


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
