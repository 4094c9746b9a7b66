"""The BeyondTrust base stream: transport, retries, streamed XML and errors.

Every report is ``GET /api/reporting?generate_report=<Name>&...``. Answers are
read from the socket as they arrive (``stream=True``) and parsed with lxml's
``iterparse``; each row element is turned into a record and cleared, so memory
stays flat whatever the size of the report.

Every answer is read through ``BeyondTrustStream.read_answer``, the one
request path: each attempt (the request, the token request when one is due,
and the body up to the first row not yet emitted) runs under singer-sdk's
backoff decorator, so 429, 5xx, timeouts and dropped connections are retried
with one wait rule (``StreamRules.retry_wait``). A body that breaks off after
rows were emitted is asked again and the rows already emitted are read past,
once a digest of their keys proves the new answer starts with the same rows.
Nothing is ever half-read silently: past ``max_retries`` the sync fails.
The OAuth token is in ``auth.py``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import http.client
import itertools
import typing as t
from functools import cached_property
from http import HTTPStatus
from urllib.parse import urlparse

import requests
import urllib3
from lxml import etree
from singer_sdk import RESTStream
from singer_sdk.exceptions import FatalAPIError, RetriableAPIError
from singer_sdk.helpers.conform import TypeConformanceLevel
from singer_sdk.pagination import BaseAPIPaginator, SinglePagePaginator
from typing_extensions import override

from tap_beyondtrust import period
from tap_beyondtrust._sdk import FastRecordMessages, tap_of
from tap_beyondtrust.streamrules import StreamRules

if t.TYPE_CHECKING:
    from tap_beyondtrust.auth import BeyondTrustOAuth

T = t.TypeVar("T")

NS = "https://www.beyondtrust.com/namespaces/API/reporting"
ERROR_TAG = f"{{{NS}}}error"
DEFAULT_REPORT_PATH = "/api/reporting"
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


def tag(name: str) -> str:
    return f"{{{NS}}}{name}"


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


def parse_when(value: t.Any) -> dt.datetime:
    """start_date or a bookmark: an ISO date (its midnight UTC) or date-time,
    UTC unless it carries an offset. Unlike ``period.parse_instant`` the result
    keeps the offset it is written with: the archives' first day is
    start_date's date as written (``windows.first_instant``)."""
    raw = str(value).strip()
    if len(raw) <= 10:
        return dt.datetime.combine(dt.date.fromisoformat(raw), dt.time(), UTC)
    parsed = dt.datetime.fromisoformat(raw.replace("Z", "+00:00"))
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def period_end(config: t.Mapping[str, t.Any], now: int) -> int:
    """The exclusive end of what a sync reads, in UNIX seconds: ``now`` (the
    sync's start), or the end of end_date if that is earlier (``period.end_instant``)."""
    bound = period.end_instant(config)
    return now if bound is None else min(now, int(bound.timestamp()))


def to_epoch(value: dt.datetime) -> int:
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return int(value.timestamp())


# ------------------------------------------------------------------ streams
class BeyondTrustStream(StreamRules, FastRecordMessages, RESTStream):
    """Shared behaviour of every report (BATCH, retry waits, TLS, timeout, api_url: ``StreamRules``)."""

    # records are built with their declared types; conforming again costs CPU
    TYPE_CONFORMANCE_LEVEL = TypeConformanceLevel.NONE
    #: generate_report value
    report: str = ""

    # path stays per tap (StreamRules has none): the taps read ``paths`` differently;
    # here every report shares one default path, DEFAULT_REPORT_PATH (there is no default_path)
    @property
    @override
    def path(self) -> str:  # type: ignore[override]
        return str((self.config.get("paths") or {}).get(self.name, DEFAULT_REPORT_PATH))

    @property
    @override
    def authenticator(self) -> BeyondTrustOAuth:
        return t.cast("BeyondTrustOAuth", tap_of(self).oauth)  # type: ignore[attr-defined]  # the tap's one

    @property
    @override
    def http_headers(self) -> dict:
        # the document: close the connection after each API call
        return {"Connection": "close", "Accept": "text/xml, application/xml, application/x-gzip"}

    # -------------------------------------------------------------- one request
    def send(self, prepared_request: requests.PreparedRequest, context: t.Any) -> requests.Response:
        """One call, its body left on the socket to be read as it arrives.

        The shared token is fetched here when needed (so the token request is
        retried by the same decorator as the report); a 401 drops the token it
        rejected and the call is sent once more with a new one, as the API
        contract says; a second 401 fails (``validate_response``)."""
        auth = self.authenticator
        response = self._send_authenticated(auth, prepared_request)
        if response.status_code == HTTPStatus.UNAUTHORIZED:
            response.close()
            self.logger.info("BeyondTrust answered 401 on %s: renewing the access token once", self.report)
            auth.renew(str(prepared_request.headers.get("Authorization", "")).removeprefix("Bearer ") or None)
            response = self._send_authenticated(auth, prepared_request)
        try:
            self.validate_response(response)
        except Exception:
            response.close()
            raise
        return response

    def _send_authenticated(self, auth: BeyondTrustOAuth,
                            prepared_request: requests.PreparedRequest) -> requests.Response:
        return self.requests_session.send(auth(prepared_request), timeout=self.timeout, stream=True,
                                          allow_redirects=self.allow_redirects)

    # validate_response is singer-sdk's: 429 and 5xx retried, other 4xx fatal. The
    # ``<error>`` the appliance answers with HTTP 200 (API contract) is found by the
    # XML parser as the body streams (``iter_elements``): validate_response would
    # have to read a whole, possibly huge, answer first.
    @override
    def response_error_message(self, response: requests.Response) -> str:
        """The appliance's ``<error>`` text (or the start of the body), with the report and stream."""
        path = urlparse(response.url).path
        body = response.content[:4000]
        detail = _xml_error_text(body) or body[:300].decode("utf-8", "replace").strip()
        hint = " (the access token was refused twice: check the API account's permissions)" \
            if response.status_code == HTTPStatus.UNAUTHORIZED else ""
        return (f"BeyondTrust {path} ({self.report} report for stream {self.name}) answered "
                f"{response.status_code} {response.reason}: {detail}{hint}")

    # -------------------------------------------------------------- reading
    @cached_property
    def _open_answer_retried(self) -> t.Callable[..., tuple[requests.Response, t.Iterator[t.Any]]]:
        return t.cast("t.Callable[..., tuple[requests.Response, t.Iterator[t.Any]]]",
                      self.request_decorator(self._open_answer))  # type: ignore[arg-type]

    def read_answer(self, context: t.Any, params: dict, parse: t.Callable[[requests.Response], t.Iterable[T]],
                    key: t.Callable[[T], str] | None = None) -> t.Iterator[T]:
        """The one request path: the items ``parse`` reads from one answer, as they arrive.

        Every attempt goes through the backoff decorator (``request_decorator``):
        429, 5xx, timeouts, dropped connections, a token request that failed
        likewise, and a body that broke off in transit. After a break the answer
        is asked again and the items already yielded are read past: ``key``
        (when given) of each must match what was yielded, else the sync stops
        rather than skip the wrong rows. A break counts as one attempt of the
        position it happened at; past ``max_retries`` the sync fails."""
        progress = _Progress(key)
        while True:
            try:
                response, items = self._open_answer_retried(context, params, parse, progress)
            except AnswerBrokeOff as exc:
                raise BeyondTrustAPIError(
                    f"BeyondTrust {params.get('generate_report', self.report)} (stream {self.name}): the answer "
                    f"broke off {self.backoff_max_tries()} times ({exc}); the sync stops and the bookmark "
                    f"stays at the start of this answer's window") from None
            try:
                for item in items:
                    progress.add(item)
                    yield item
                return
            except BODY_ERRORS as exc:
                progress.broken = type(exc).__name__
                self.logger.warning("BeyondTrust %s answer broke off after %d rows (%s); asking again",
                                    params.get("generate_report", self.report), progress.count, progress.broken)
            finally:
                response.close()

    def _open_answer(self, context: t.Any, params: dict, parse: t.Callable[[requests.Response], t.Iterable[T]],
                     progress: _Progress) -> tuple[requests.Response, t.Iterator[T]]:
        """One attempt of ``read_answer``: the request, the items already yielded read
        past, and the first new one read, so that a break anywhere before it is
        retried here by the decorator."""
        if progress.broken:  # raised inside the decorated call: it waits and counts like any failure
            broken, progress.broken = progress.broken, None
            raise AnswerBrokeOff(broken)
        prepared = self.build_prepared_request(method="GET", url=self.get_url(context), params=params,
                                               headers=self.http_headers)
        response = self.send(prepared, context)
        try:
            items = iter(parse(response))
            progress.read_past(items, self)
            first = next(items, _END)
        except BODY_ERRORS as exc:
            response.close()
            self.logger.warning("BeyondTrust %s answer broke off after %d rows (%s); asking again",
                                params.get("generate_report", self.report), progress.count, type(exc).__name__)
            raise AnswerBrokeOff(type(exc).__name__) from None
        except BaseException:
            response.close()
            raise
        if first is _END:
            return response, iter(())
        return response, itertools.chain((t.cast("T", first),), items)

    def report_params(self, context: t.Any, window: t.Any) -> dict:
        return {"generate_report": self.report}

    @override
    def get_url_params(self, context: t.Any, next_page_token: t.Any) -> dict:
        return self.report_params(context, next_page_token)

    @override
    def parse_response(self, response: requests.Response) -> t.Iterable[dict]:  # pragma: no cover
        raise NotImplementedError  # rows are read by read_report

    @override
    def get_new_paginator(self) -> BaseAPIPaginator:
        return SinglePagePaginator()  # one answer per request; windowed streams walk a WindowPaginator

    def rows(self, response: requests.Response, context: t.Any, window: t.Any) -> t.Iterator[dict]:
        """Records of one answer; subclasses parse the body as a stream."""
        raise NotImplementedError

    def record_key(self, record: dict) -> str:
        return "|".join(str(record.get(k)) for k in self.primary_keys or ())

    def read_report(self, context: t.Any, window: t.Any) -> t.Iterator[dict]:
        """The records of one report answer (``read_answer`` with this stream's parameters and rows)."""
        return self.read_answer(context, self.report_params(context, window),
                                lambda response: self.rows(response, context, window), self.record_key)


class AnswerBrokeOff(RetriableAPIError):
    """An answer's body broke off in transit (its message: the error's name): asked again."""


class _Progress:
    """How far ``read_answer`` got through an answer: the items yielded and a digest of their keys."""

    __slots__ = ("broken", "count", "digest", "key")

    def __init__(self, key: t.Callable[[t.Any], str] | None) -> None:
        self.key = key
        self.count = 0
        self.digest = hashlib.blake2b(digest_size=16)
        self.broken: str | None = None

    def add(self, item: t.Any) -> None:
        self.count += 1
        if self.key is not None:
            self.digest.update(self.key(item).encode())

    def read_past(self, items: t.Iterator[t.Any], stream: BeyondTrustStream) -> None:
        """Read the items already yielded again; with a key, they must be the same ones."""
        check = hashlib.blake2b(digest_size=16)
        for seen, item in enumerate(itertools.islice(items, self.count), 1):
            if self.key is not None:
                check.update(self.key(item).encode())
            if seen == self.count and self.key is not None and check.digest() != self.digest.digest():
                raise BeyondTrustAPIError(
                    f"BeyondTrust {stream.report} answered differently after a dropped connection "
                    f"(stream {stream.name}); rerun the sync")


_END = object()


def fetch_rows(stream: BeyondTrustStream, context: t.Any, params: dict, tags: t.Sequence[str], root: str,
               build: t.Callable[[t.Any], t.Any]) -> list:
    """A small answer read whole (a listing, the lsids of a window): one item of
    ``read_answer``, so a break asks for it again from its start."""
    report = str(params.get("generate_report", stream.report))
    (rows,) = stream.read_answer(
        context, params, lambda response: [[build(el) for el in iter_elements(response, tags, report, root)]])
    return rows


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

