"""The BeyondTrust base stream: OAuth, transport, retries, streamed XML and errors.

Every report is ``GET /api/reporting?generate_report=<Name>&...``. Answers are
read from the socket as they arrive (``stream=True``) and parsed with lxml's
``iterparse``; each row element is turned into a record and cleared, so memory
stays flat whatever the size of the report.

A body is read after the SDK's request retry has returned, so a connection
dropped mid-body is retried here (``_read_with_retry``): the report is asked
again and the rows already emitted are skipped once a digest of their keys
proves the new answer starts with the same rows. Nothing is ever half-read
silently: past the retry budget the sync fails.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import http.client
import threading
import time
import typing as t
from urllib.parse import urlparse

import requests
import urllib3
from lxml import etree
from singer_sdk import RESTStream
from singer_sdk.exceptions import FatalAPIError, RetriableAPIError
from singer_sdk.helpers.conform import TypeConformanceLevel
from singer_sdk.pagination import BaseAPIPaginator, SinglePagePaginator

from tap_beyondtrust._sdk import FastRecordMessages, tap_of

NS = "https://www.beyondtrust.com/namespaces/API/reporting"
ERROR_TAG = f"{{{NS}}}error"
DEFAULT_REPORT_PATH = "/api/reporting"
DEFAULT_TOKEN_PATH = "/oauth2/token"
TOKEN_MARGIN_SECONDS = 60
MAX_RETRY_AFTER = 600.0
UTC = dt.timezone.utc

#: errors that mean the body was cut off in transit: the report is asked again
BODY_ERRORS: tuple[type[BaseException], ...] = (
    ConnectionError,  # includes ConnectionResetError
    TimeoutError,
    http.client.IncompleteRead,
    urllib3.exceptions.ProtocolError,
    urllib3.exceptions.ReadTimeoutError,
    requests.exceptions.ConnectionError,
    requests.exceptions.ChunkedEncodingError,
    requests.exceptions.Timeout,
    EOFError,  # a gzip archive that ends before its trailer
)


class BeyondTrustAPIError(FatalAPIError):
    """The appliance answered something the tap cannot use."""


class TokenRejected(Exception):
    """A 401 on a report: the token is renewed once and the call repeated."""


def tag(name: str) -> str:
    return f"{{{NS}}}{name}"


# ------------------------------------------------------------------ auth
class OAuthClientCredentials(requests.auth.AuthBase):
    """One access token for the whole sync, shared by every stream.

    An API account holds at most 30 valid tokens (a 31st silently invalidates
    the oldest), so the tap fetches one, reuses it until shortly before it
    expires, and renews it only then or after a 401.
    """

    def __init__(self, token_url: str, client_id: str, client_secret: str, *,
                 verify: bool | str, timeout: float, max_tries: int, backoff: float, logger: t.Any) -> None:
        self.token_url = token_url
        self._client = (client_id, client_secret)
        self.verify = verify
        self.timeout = timeout
        self.max_tries = max(1, max_tries)
        self.backoff = backoff
        self.logger = logger
        self._token: str | None = None
        self._expires_at = 0.0
        self._lock = threading.Lock()
        self.tokens_fetched = 0

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers["Authorization"] = f"Bearer {self.token()}"
        return request

    def token(self) -> str:
        with self._lock:
            if self._token is None or time.time() >= self._expires_at:
                self._fetch()
            assert self._token is not None
            return self._token

    def renew(self, rejected: str | None) -> None:
        """Drop the token a 401 rejected (unless another call renewed it already)."""
        with self._lock:
            if rejected is None or rejected == self._token:
                self._token = None

    def _fetch(self) -> None:
        path = urlparse(self.token_url).path
        for attempt in range(self.max_tries):
            try:
                response = requests.post(
                    self.token_url, auth=self._client, data={"grant_type": "client_credentials"},
                    headers={"Connection": "close", "Accept": "application/json"},
                    timeout=self.timeout, verify=self.verify,
                )
            except (requests.exceptions.ConnectionError, requests.exceptions.Timeout) as exc:
                if attempt + 1 >= self.max_tries:
                    raise BeyondTrustAPIError(f"BeyondTrust {path} could not be reached: {type(exc).__name__}") from None
                time.sleep(self.backoff * 2**attempt)
                continue
            if response.status_code == 429 or response.status_code >= 500:
                if attempt + 1 >= self.max_tries:
                    raise BeyondTrustAPIError(f"BeyondTrust {path} answered {response.status_code} "
                                              f"after {self.max_tries} attempts")
                time.sleep(_retry_after_header(response) or self.backoff * 2**attempt)
                continue
            if response.status_code != 200:
                detail = _json_error(response)
                raise BeyondTrustAPIError(
                    f"BeyondTrust {path} refused the client credentials ({response.status_code} "
                    f"{response.reason}: {detail}); check the client_id and client_secret settings")
            try:
                payload = response.json()
                token = str(payload["access_token"])
                lifetime = float(payload.get("expires_in") or 3600)
            except (ValueError, KeyError, TypeError):
                raise BeyondTrustAPIError(f"BeyondTrust {path} answered 200 without an access_token") from None
            self._token = token
            # renew a little early, but never treat a short-lived token as expired at once
            self._expires_at = time.time() + max(lifetime - min(TOKEN_MARGIN_SECONDS, lifetime / 10), 1.0)
            self.tokens_fetched += 1
            self.logger.info("Fetched a BeyondTrust access token (valid %ss)", int(lifetime))
            return


# ------------------------------------------------------------------ time
def utc_iso(value: str | None) -> str | None:
    """An ISO 8601 time with the appliance's offset, as UTC."""
    if not value:
        return None
    try:
        parsed = dt.datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC).isoformat()


def unix_iso(value: t.Any) -> str | None:
    try:
        return dt.datetime.fromtimestamp(int(value), UTC).isoformat()
    except (TypeError, ValueError, OverflowError, OSError):
        return None


def element_time(el: t.Any) -> str | None:
    """A time element: its UNIX ``timestamp`` attribute when present, else its ISO text."""
    stamp = el.get("timestamp")
    if stamp:
        converted = unix_iso(stamp)
        if converted:
            return converted
    return utc_iso(el.text)


def attr_time(value: str | None) -> str | None:
    """A time attribute, ISO (with offset) or UNIX."""
    if not value:
        return None
    if value.isdigit():
        return unix_iso(value)
    return utc_iso(value)


def default_start() -> dt.datetime:
    """30 days ago, 00:00 UTC: where a first sync starts without start_date."""
    today = dt.datetime.now(UTC).date()
    return dt.datetime.combine(today - dt.timedelta(days=30), dt.time(), UTC)


def to_epoch(value: dt.datetime) -> int:
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return int(value.timestamp())


# ------------------------------------------------------------------ windows
class WindowPaginator(BaseAPIPaginator):
    """Walks ``[lo, hi)`` UNIX-second windows; the current window is the token."""

    def __init__(self, windows: list[tuple[int, int]]) -> None:
        self._windows = windows
        self._position = 0
        super().__init__(windows[0] if windows else None)
        if not windows:
            self._finished = True

    def get_next(self, response: requests.Response | None) -> tuple[int, int] | None:
        self._position += 1
        return self._windows[self._position] if self._position < len(self._windows) else None


def make_windows(lo: int, hi: int, size: int, *, align: int = 0) -> list[tuple[int, int]]:
    """Windows of ``size`` seconds covering [lo, hi); aligned to ``align`` seconds if set."""
    if align:
        lo -= lo % align
    windows = []
    while lo < hi:
        end = min(lo + size, hi)
        if align:
            end = min((lo // align + max(size // align, 1)) * align, hi)
        windows.append((lo, end))
        lo = end
    return windows


# ------------------------------------------------------------------ streams
class BeyondTrustStream(FastRecordMessages, RESTStream):
    """Shared behaviour of every report."""

    # records are built with their declared types; conforming again costs CPU
    TYPE_CONFORMANCE_LEVEL = TypeConformanceLevel.NONE
    #: generate_report value
    report: str = ""

    @property
    def url_base(self) -> str:
        return self.config["api_url"].rstrip("/")

    @property
    def path(self) -> str:  # type: ignore[override]
        return (self.config.get("paths") or {}).get(self.name, DEFAULT_REPORT_PATH)

    @property
    def authenticator(self) -> OAuthClientCredentials:  # type: ignore[override]
        return tap_of(self).oauth  # type: ignore[attr-defined]

    @property
    def http_headers(self) -> dict:
        # the document: close the connection after each API call
        return {"Connection": "close", "Accept": "text/xml, application/xml, application/x-gzip"}

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
        """Wait what Retry-After asks, else retry_backoff_seconds doubled each time."""
        base = float(self.config.get("retry_backoff_seconds", 2))
        attempt = 0
        exception = yield  # type: ignore[misc]
        while True:
            response = getattr(exception, "response", None)
            wait = _retry_after_header(response) if response is not None else None
            if wait is None:
                wait = base * 2**attempt
            attempt += 1
            exception = yield wait

    def backoff_jitter(self, value: float) -> float:
        return value

    def _request(self, prepared_request: requests.PreparedRequest, context: t.Any) -> requests.Response:
        """Send with the body left on the socket; a 401 renews the token once."""
        auth = self.authenticator
        for attempt in (1, 2):
            sent = auth(prepared_request)
            token = auth._token
            response = self.requests_session.send(sent, timeout=self.timeout, stream=True,
                                                  allow_redirects=self.allow_redirects)
            if response.status_code == 401 and attempt == 1:
                response.close()
                self.logger.info("BeyondTrust answered 401 on %s: renewing the access token once", self.report)
                auth.renew(token)
                continue
            try:
                self.validate_response(response)
            except Exception:
                response.close()
                raise
            return response
        raise AssertionError("unreachable")

    def validate_response(self, response: requests.Response) -> None:
        status = response.status_code
        if status == 429 or status >= 500:
            raise RetriableAPIError(self.response_error_message(response), response)
        if status >= 400:
            raise BeyondTrustAPIError(self.response_error_message(response))

    def response_error_message(self, response: requests.Response) -> str:
        path = urlparse(response.url).path
        detail = _xml_error_text(response.content[:4000]) or response.content[:300].decode("utf-8", "replace").strip()
        hint = " (the access token was refused twice: check the API account's permissions)" \
            if response.status_code == 401 else ""
        return (f"BeyondTrust {path} ({self.report} report for stream {self.name}) answered "
                f"{response.status_code} {response.reason}: {detail}{hint}")

    def sync_end(self) -> int:
        """Now, or the end of end_date (a bare date means the whole of that day)."""
        end = int(time.time())
        if self.config.get("end_date"):
            raw = str(self.config["end_date"])
            end_date = dt.datetime.fromisoformat(raw.replace("Z", "+00:00")) if len(raw) > 10 \
                else dt.datetime.combine(dt.date.fromisoformat(raw), dt.time()) + dt.timedelta(days=1)
            end = min(end, to_epoch(end_date))
        return end

    # -------------------------------------------------------------- reading
    def report_params(self, context: t.Any, window: t.Any) -> dict:
        return {"generate_report": self.report}

    def get_url_params(self, context: t.Any, next_page_token: t.Any) -> dict:
        return self.report_params(context, next_page_token)

    def parse_response(self, response: requests.Response) -> t.Iterable[dict]:  # pragma: no cover
        raise NotImplementedError  # rows are read by read_report

    def get_new_paginator(self) -> BaseAPIPaginator:
        return SinglePagePaginator()  # one answer per request; windowed streams walk a WindowPaginator

    def rows(self, response: requests.Response, context: t.Any, window: t.Any) -> t.Iterator[dict]:
        """Records of one answer; subclasses parse the body as a stream."""
        raise NotImplementedError

    def record_key(self, record: dict) -> str:
        return "|".join(str(record.get(k)) for k in self.primary_keys or ())

    def read_report(self, context: t.Any, window: t.Any) -> t.Iterator[dict]:
        """One report answer, retried from the start if its body breaks off."""
        decorated = self.request_decorator(self._request)
        tries = self.backoff_max_tries()
        base = float(self.config.get("retry_backoff_seconds", 2))
        emitted = 0
        digest = hashlib.blake2b(digest_size=16)
        for attempt in range(tries):
            prepared = self.build_prepared_request(
                method="GET", url=self.get_url(context), params=self.report_params(context, window),
                headers=self.http_headers)
            response = decorated(prepared, context)
            seen = 0
            check = hashlib.blake2b(digest_size=16)
            try:
                for record in self.rows(response, context, window):
                    if seen < emitted:
                        check.update(self.record_key(record).encode())
                        seen += 1
                        if seen == emitted and check.digest() != digest.digest():
                            raise BeyondTrustAPIError(
                                f"BeyondTrust {self.report} answered differently after a dropped connection "
                                f"(stream {self.name}); rerun the sync")
                        continue
                    digest.update(self.record_key(record).encode())
                    emitted += 1
                    seen += 1
                    yield record
                return
            except BODY_ERRORS as exc:
                if attempt + 1 >= tries:
                    raise BeyondTrustAPIError(
                        f"BeyondTrust {self.report} (stream {self.name}): the answer broke off "
                        f"{tries} times ({type(exc).__name__}); the sync stops and the bookmark stays "
                        f"at the start of this answer's window") from None
                wait = base * 2**attempt
                self.logger.warning("BeyondTrust %s answer broke off after %d rows (%s); asking again in %.2fs",
                                    self.report, seen, type(exc).__name__, wait)
                time.sleep(wait)
            finally:
                response.close()


def fetch_rows(stream: BeyondTrustStream, context: t.Any, params: dict, tags: t.Sequence[str], root: str,
               build: t.Callable[[t.Any], t.Any]) -> list:
    """A small answer read whole (a listing, the lsids of a window), asked again
    from the start if its body breaks off."""
    decorated = stream.request_decorator(stream._request)
    tries = stream.backoff_max_tries()
    base = float(stream.config.get("retry_backoff_seconds", 2))
    report = params.get("generate_report", stream.report)
    for attempt in range(tries):
        prepared = stream.build_prepared_request(method="GET", url=stream.get_url(context), params=params,
                                                 headers=stream.http_headers)
        response = decorated(prepared, context)
        try:
            return [build(el) for el in iter_elements(response, tags, report, root)]
        except BODY_ERRORS as exc:
            if attempt + 1 >= tries:
                raise BeyondTrustAPIError(
                    f"BeyondTrust {report} (stream {stream.name}): the answer broke off {tries} times "
                    f"({type(exc).__name__})") from None
            wait = base * 2**attempt
            stream.logger.warning("BeyondTrust %s answer broke off (%s); asking again in %.2fs",
                                  report, type(exc).__name__, wait)
            time.sleep(wait)
        finally:
            response.close()
    raise AssertionError("unreachable")


# ------------------------------------------------------------------ xml
def iter_elements(response: requests.Response, tags: t.Sequence[str], report: str,
                  root: str | None = None) -> t.Iterator[t.Any]:
    """The ``end`` of each element named in ``tags`` (local names), streamed.

    The caller turns each one into records before asking for the next; it is
    then cleared, with its already-read siblings, so nothing accumulates. An
    ``<error>`` answer, or an ``<error>`` in the report's root element, fails
    with the appliance's message; so does an answer whose root is not ``root``
    in the reporting namespace (rather than reading no rows from it).
    """
    raw = response.raw
    raw.decode_content = True
    wanted = [tag(name) for name in tags] + [ERROR_TAG]
    parser = etree.iterparse(raw, events=("end",), tag=wanted, resolve_entities=False,
                             no_network=True, huge_tree=True, load_dtd=False)
    try:
        for _, el in parser:
            if el.tag == ERROR_TAG:
                parent = el.getparent()
                if parent is None or parent.getparent() is None:  # the answer itself, or in its root
                    message = (el.text or "").strip() or "(no message)"
                    raise BeyondTrustAPIError(f"BeyondTrust {report} report failed: {message}")
                continue  # deeper down it is row data, left to its row's builder
            yield el
            el.clear(keep_tail=False)
            parent = el.getparent()
            if parent is not None:
                while el.getprevious() is not None:
                    del parent[0]
        found = parser.root
        if root is not None and (found is None or found.tag != tag(root)):
            name = found.tag if found is not None else "nothing"
            raise BeyondTrustAPIError(
                f"BeyondTrust {report} answered <{name}> where the document names <{root}> in the "
                f"namespace {NS}")
    except etree.XMLSyntaxError as exc:
        path = urlparse(response.url).path
        raise BeyondTrustAPIError(
            f"BeyondTrust {path} ({report} report) answered XML that cannot be parsed: {exc}") from None


def _xml_error_text(body: bytes) -> str | None:
    try:
        root = etree.fromstring(body, etree.XMLParser(resolve_entities=False, no_network=True))
    except etree.XMLSyntaxError:
        return None
    if root.tag == ERROR_TAG:
        return (root.text or "").strip()
    found = root.find(ERROR_TAG)
    return (found.text or "").strip() if found is not None else None


def _json_error(response: requests.Response) -> str:
    try:
        body = response.json()
        if isinstance(body, dict):
            return str(body.get("error_description") or body.get("error") or body)[:300]
    except ValueError:
        pass
    return response.text[:300].strip()


def _retry_after_header(response: requests.Response | None) -> float | None:
    if response is None:
        return None
    header = response.headers.get("Retry-After")
    if not header:
        return None
    try:
        return min(max(float(header), 0.0), MAX_RETRY_AFTER)
    except ValueError:
        try:
            when = dt.datetime.strptime(header, "%a, %d %b %Y %H:%M:%S GMT").replace(tzinfo=UTC)
        except ValueError:
            return None
        return min(max((when - dt.datetime.now(UTC)).total_seconds(), 0.0), MAX_RETRY_AFTER)
