"""The Ekran base stream: auth, transport, retries, the response envelope and errors."""

from __future__ import annotations

import datetime as dt
import json
import re
import typing as t
from functools import cached_property
from urllib.parse import urlparse
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import requests
from singer_sdk import RESTStream
from singer_sdk.authenticators import APIKeyAuthenticator
from singer_sdk.exceptions import FatalAPIError
from singer_sdk.helpers.conform import TypeConformanceLevel
from typing_extensions import override

from tap_ekran._sdk import FastRecordMessages
from tap_ekran.streamrules import StreamRules

UTC = dt.timezone.utc
#: the most sessions the API hands out per request ("Max value: 1000")
MAX_SESSION_COUNT = 1000
#: OpenSSL's reason in a requests SSLError, e.g. "certificate verify failed: self-signed certificate"
_SSL_REASON = re.compile(r"\[SSL: [A-Z_]+\] ([^(]+)")
#: the header Ekran reads its API key from
API_KEY_HEADER = "ApiKey"
DEFAULT_TIMEZONE = "UTC"


def server_zone(name: t.Any) -> dt.tzinfo:
    """The zone of the `timezone` setting (an IANA name): how the Ekran
    server's clock reads the times it writes, and reads, without an offset.

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


class EkranAPIError(FatalAPIError):
    """The Ekran server answered something the tap cannot use."""


def page_of(response: requests.Response) -> dict:
    """The response's envelope ``{"sessions": [...], "totalCount": N}``, parsed once.

    A body that is not JSON, or not that envelope, is an error: a page the tap
    cannot read is never skipped silently.
    """
    cached = getattr(response, "_ekran_page", None)
    if cached is not None:
        return cached
    path = urlparse(response.url).path
    try:
        payload = json.loads(response.content)
    except ValueError as exc:
        snippet = response.content[:200].decode("utf-8", "replace")
        raise EkranAPIError(
            f"Ekran answered POST {path} with a body that is not JSON ({exc}): {snippet!r}"
        ) from exc
    if not isinstance(payload, dict) or not isinstance(payload.get("sessions"), list):
        raise EkranAPIError(
            f"Ekran answered POST {path} without the documented 'sessions' list: {str(payload)[:200]!r}"
        )
    total = payload.get("totalCount")
    if not isinstance(total, int) or isinstance(total, bool) or total < 0:
        raise EkranAPIError(
            f"Ekran answered POST {path} without a usable 'totalCount' (got {total!r}); "
            "the tap needs it to know when the pages of a range are complete"
        )
    response._ekran_page = payload  # type: ignore[attr-defined]
    return payload


# ------------------------------------------------------------------ values
#: .NET TimeSpan text: [-][d.]h:mm:ss[.fffffff]. The document writes
#: HH:MM:SS.fffffff; its own sample also has a one-digit hour (8:12:25.7950000),
#: and .NET writes a day count in front of spans of a day or more (1.02:03:04).
_TIMESPAN = re.compile(r"(-)?(?:(\d+)\.)?(\d+):([0-5]\d):([0-5]\d)(?:\.(\d{1,7}))?", re.ASCII)
#: the usual form (no days, seven fraction digits), parsed faster
_USUAL_TIMESPAN = re.compile(r"(\d\d?):([0-5]\d):([0-5]\d\.\d{7})", re.ASCII).fullmatch


def timespan_seconds(value: t.Any) -> float | None:
    """Seconds in an Ekran time span, or None where it does not parse.

    The vendor's own sample holds ``11:22:66.6540000`` (66 seconds): such a
    value gives None, never an error.
    """
    if value.__class__ is not str:
        return None
    usual = _USUAL_TIMESPAN(value)
    if usual:
        hours, minutes, seconds = usual.groups()
        return int(hours) * 3600 + int(minutes) * 60 + float(seconds)
    match = _TIMESPAN.fullmatch(value.strip())
    if not match:
        return None
    sign, days, hours, minutes, seconds, fraction = match.groups()
    if days is not None and int(hours) > 23:
        return None  # "1.25:00:00" is not a time span
    total = int(days or 0) * 86400 + int(hours) * 3600 + int(minutes) * 60 + int(seconds)
    if fraction:
        total += int(fraction) / 10 ** len(fraction)
    return -total if sign else float(total)


def utc_time(value: t.Any, zone: dt.tzinfo = UTC) -> tuple[str, dt.datetime] | None:
    """An Ekran date-time as ISO 8601 in UTC and as an aware datetime; None
    where it does not parse.

    The API writes ``2000-01-23T04:56:07.000+00:00``: such UTC values are
    checked and kept as written; values with another offset are converted;
    values without one are times on the server's clock, ``zone`` (the
    `timezone` setting, UTC by default).
    """
    if value.__class__ is not str or not value:
        return None
    utc = value.endswith("+00:00")
    try:
        parsed = dt.datetime.fromisoformat(value if utc else value.replace("Z", "+00:00"))
    except ValueError:
        return None
    if utc:
        return value, parsed
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=zone).astimezone(UTC)
        return parsed.isoformat(), parsed
    parsed = parsed.astimezone(UTC)
    return (value if value.endswith("Z") else parsed.isoformat()), parsed


def utc_iso(value: t.Any, zone: dt.tzinfo = UTC) -> str | None:
    """An Ekran date-time as ISO 8601 in UTC (see `utc_time`); None where it does not parse."""
    parsed = utc_time(value, zone)
    return parsed[0] if parsed is not None else None


def is_unset_date(value: t.Any) -> bool:
    """No date: null, empty, or .NET's DateTime.MinValue (0001-01-01), which
    .NET servers write for a date never set (a session not yet ended)."""
    return not value or (value.__class__ is str and value.startswith("0001-01-01"))


def parse_datetime(value: t.Any) -> dt.datetime | None:
    """An ISO 8601 date-time as an aware UTC datetime (naive means UTC), or None."""
    if isinstance(value, dt.datetime):
        parsed = value
    elif isinstance(value, str) and value:
        try:
            parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
    else:
        return None
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


# ------------------------------------------------------------------ stream
class EkranStream(StreamRules, FastRecordMessages, RESTStream):
    """Shared behaviour of Ekran endpoints: the ApiKey header, retries with
    Retry-After, and readable errors (BATCH, the waits between attempts, TLS
    settings, timeout and api_url: ``StreamRules``).

    singer-sdk's ``validate_response`` classifies the answers (429 and 5xx
    retried, other 4xx fatal); ``response_error_message`` words them."""

    # post_process already gives every field its declared type (date-times in
    # UTC, seconds as numbers); conforming each record again costs CPU for nothing.
    TYPE_CONFORMANCE_LEVEL = TypeConformanceLevel.NONE
    #: the default path, relative to api_url; overridable through `paths`
    default_path: str = ""

    # path stays per tap (StreamRules has none): the taps read ``paths`` differently;
    # here an empty entry means default_path, and a path without its leading / gets one
    @property
    @override
    def path(self) -> str:  # type: ignore[override]
        path = (self.config.get("paths") or {}).get(self.name) or self.default_path
        return path if path.startswith("/") else f"/{path}"

    @cached_property
    @override
    def authenticator(self) -> APIKeyAuthenticator:
        return APIKeyAuthenticator(key=API_KEY_HEADER, value=self.config["api_token"], location="header")

    # -------------------------------------------------------------- retries
    @override
    def request_decorator(self, func: t.Callable) -> t.Callable:
        """singer-sdk's retries, then a readable error when they give up on
        the network itself (TLS, connection, timeout)."""
        retrying = super().request_decorator(func)
        attempts = self.backoff_max_tries()

        def request(*args: t.Any, **kwargs: t.Any) -> requests.Response:
            try:
                return retrying(*args, **kwargs)
            except requests.exceptions.SSLError as exc:
                reason = _SSL_REASON.search(str(exc))
                raise EkranAPIError(
                    f"TLS verification of {self.url_base} failed "
                    f"({reason.group(1).strip() if reason else exc.__class__.__name__}): set ca_bundle "
                    "to the PEM file of the CA that signed your Ekran server's certificate "
                    "(or verify_ssl to false, for a test server only)"
                ) from exc
            except requests.exceptions.Timeout as exc:
                raise EkranAPIError(
                    f"Ekran POST {self.path} did not answer within request_timeout="
                    f"{self.config['request_timeout']} s, {attempts} attempts"
                ) from exc
            except requests.exceptions.ConnectionError as exc:
                raise EkranAPIError(
                    f"Ekran at {self.url_base} could not be reached in {attempts} attempts "
                    f"(check api_url and the network): {exc}"
                ) from exc

        return request

    @override
    def backoff_handler(self, details: t.Mapping[str, t.Any]) -> None:
        """One readable line per retry (the SDK's default prints the request)."""
        exc = details.get("exception")
        response = getattr(exc, "response", None)
        reason = f"HTTP {response.status_code}" if response is not None else type(exc).__name__
        self.logger.warning(
            "Ekran %s: %s on attempt %d; retrying in %.2f s",
            self.path, reason, details.get("tries", 0), details.get("wait") or 0.0,
        )

    # -------------------------------------------------------------- errors
    @override
    def response_error_message(self, response: requests.Response) -> str:
        """The status, the endpoint path and the server's own message; never
        a header value or the API key."""
        path = urlparse(response.url).path
        detail = _error_detail(response)
        token = str(self.config.get("api_token") or "")
        if token:
            detail = detail.replace(token, "***")
        hint = {
            400: f" (the request body was {_request_body(response)})",
            401: " (check the api_token setting: it is sent as the ApiKey header)",
            403: " (the API key lacks permission to read sessions)",
            404: " (check api_url and paths.sessions; this endpoint exists on self-hosted Ekran servers, not in SaaS)",
            405: " (check api_url and paths.sessions: the path must accept POST)",
        }.get(response.status_code, "")
        return f"Ekran POST {path} answered {response.status_code} {response.reason}: {detail}{hint}"


def _request_body(response: requests.Response) -> str:
    """The JSON body the tap sent (times, page size and index: nothing secret)."""
    body = getattr(response.request, "body", None) or b""
    return (body.decode("utf-8", "replace") if isinstance(body, bytes) else str(body))[:300]


def _error_detail(response: requests.Response) -> str:
    """The message of an error body, whichever of the usual shapes it has."""
    text = response.text.strip()
    try:
        body = response.json()
    except ValueError:
        return text[:500] or "(empty body)"
    if isinstance(body, dict):
        for key in ("message", "Message", "error", "Error", "title", "detail", "errors"):
            if body.get(key):
                value = body[key]
                return value if isinstance(value, str) else json.dumps(value)[:500]
    return text[:500] or "(empty body)"

