"""The shared machinery of the vendor sandboxes.

A sandbox is one vendor API (a ``VendorApp``) served by a ``Sandbox`` on
127.0.0.1. The ``Sandbox`` does what every vendor needs: routing to the app,
the request log, fault injection and the admin endpoints under ``/_sandbox/``.
The app does what is the vendor's own: auth, paths, envelopes, data.

Admin endpoints (no auth, used by the demo and by tests in other processes):

- ``GET /_sandbox/info``: the app's ``info()`` (expected counts and the like)
- ``GET /_sandbox/requests``, ``DELETE /_sandbox/requests``: the request log
- ``POST /_sandbox/faults`` (a JSON list of fault specs), ``DELETE /_sandbox/faults``
- ``POST /_sandbox/advance`` (JSON keyword arguments): time passes in the app
- ``POST /_sandbox/delete`` (JSON keyword arguments, e.g. ``{"stream": ..., "id": ...}``):
  an entry is deleted at the vendor (the app's ``delete``)
"""

from __future__ import annotations

import dataclasses
import json
import re
import socket
import struct
import threading
import time
import typing as t
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

ADMIN_PREFIX = "/_sandbox/"
MAX_LOGGED_REQUESTS = 200_000
MAX_FAULT_DELAY = 30.0


@dataclasses.dataclass
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: t.Mapping[str, str]
    body: bytes

    def param(self, name: str, default: str | None = None) -> str | None:
        values = self.query.get(name)
        return values[0] if values else default

    def json(self) -> t.Any:
        return json.loads(self.body or b"null")


@dataclasses.dataclass
class Response:
    status: int = 200
    body: bytes | t.Iterable[bytes] = b""
    content_type: str = "application/json"
    headers: dict[str, str] = dataclasses.field(default_factory=dict)

    @classmethod
    def json(cls, payload: t.Any, status: int = 200, **kw: t.Any) -> Response:
        return cls(status, json.dumps(payload, separators=(",", ":")).encode(), **kw)


@dataclasses.dataclass
class Fault:
    """One injected misbehaviour, applied to the next matching requests.

    kind:
      ``status``    answer ``status`` with the vendor's error body (and a
                    ``Retry-After`` header when ``retry_after`` is set)
      ``slow``      wait ``delay`` seconds, then answer normally
      ``reset``     send the headers and half the body, then reset the connection
      ``truncate``  declare the full length, send half the body, close cleanly
      ``malformed`` answer 200 with the app's malformed body
    path:  a regular expression the request path must match (None: any)
    skip:  let this many matching requests through first
    times: how many requests get the fault
    """

    kind: str
    path: str | None = None
    times: int = 1
    skip: int = 0
    status: int = 500
    retry_after: float | None = None
    delay: float = 0.0

    def __post_init__(self) -> None:
        if self.kind not in {"status", "slow", "reset", "truncate", "malformed"}:
            raise ValueError(f"unknown fault kind {self.kind!r}")
        self.delay = min(float(self.delay), MAX_FAULT_DELAY)
        self._pattern = re.compile(self.path) if self.path else None

    def matches(self, path: str) -> bool:
        return self._pattern is None or bool(self._pattern.search(path))


class VendorApp:
    """A vendor API. Subclasses implement ``handle`` and the data."""

    name = "vendor"

    def handle(self, request: Request) -> Response:  # pragma: no cover
        raise NotImplementedError

    def error(self, status: int, message: str) -> Response:
        """The vendor's error answer."""
        return Response.json({"error": message}, status=status)

    def malformed_body(self) -> tuple[bytes, str]:
        """A 200 body the client cannot parse, and its content type."""
        return b'{"data": [{"id": 1, "name": "trunc', "application/json"

    def advance(self, **kwargs: t.Any) -> dict:
        """Let time pass: new and late records appear. Returns what changed."""
        return {}

    def info(self) -> dict:
        """What tests need to know: expected counts, tokens, settings."""
        return {}

    def delete(self, **kwargs: t.Any) -> dict:
        """An entry is deleted at the vendor (not offered by every app)."""
        raise ValueError(f"the {self.name} sandbox deletes nothing")


class Sandbox:
    """Serves a ``VendorApp`` on 127.0.0.1 in a background thread."""

    def __init__(self, app: VendorApp, port: int = 0) -> None:
        self.app = app
        self.requests: deque[dict] = deque(maxlen=MAX_LOGGED_REQUESTS)
        self._faults: list[Fault] = []
        self._lock = threading.Lock()
        self._server = _Server(("127.0.0.1", port), _Handler)
        self._server.sandbox = self
        self._thread: threading.Thread | None = None

    # lifecycle
    @property
    def port(self) -> int:
        return self._server.server_address[1]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Sandbox:
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.1},
            name=f"sandbox-{self.app.name}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> Sandbox:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # faults
    def add_fault(self, kind: str, **kwargs: t.Any) -> Fault:
        fault = Fault(kind, **kwargs)
        with self._lock:
            self._faults.append(fault)
        return fault

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    def pending_faults(self) -> int:
        with self._lock:
            return sum(f.times for f in self._faults)

    def _take_fault(self, path: str) -> Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.times <= 0 or not fault.matches(path):
                    continue
                if fault.skip > 0:
                    fault.skip -= 1
                    continue
                fault.times -= 1
                return fault
        return None

    # request log
    def log(self, entry: dict) -> None:
        self.requests.append(entry)

    def logged(self, path: str | None = None) -> list[dict]:
        """Logged requests, optionally only those whose path matches ``path``."""
        entries = list(self.requests)
        if path is None:
            return entries
        pattern = re.compile(path)
        return [e for e in entries if pattern.search(e["path"])]

    def clear_log(self) -> None:
        self.requests.clear()


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 64
    sandbox: Sandbox


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body go out in separate writes: without TCP_NODELAY, Nagle
    # holds the body until the client's delayed ACK (~40 ms per keep-alive request).
    disable_nagle_algorithm = True
    server: _Server

    def log_message(self, format: str, *args: t.Any) -> None:
        pass  # the sandbox keeps its own log

    def do_GET(self) -> None:
        self._dispatch()

    do_POST = do_PUT = do_DELETE = do_PATCH = do_GET

    def _dispatch(self) -> None:
        sandbox = self.server.sandbox
        split = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        request = Request(
            method=self.command,
            path=split.path,
            query=parse_qs(split.query, keep_blank_values=True),
            headers=self.headers,
            body=body,
        )
        if self.headers.get("Connection", "").lower() == "close":
            self.close_connection = True
        if split.path.startswith(ADMIN_PREFIX):
            self._send(self._admin(request))
            return

        fault = sandbox._take_fault(split.path)
        entry = {
            "method": request.method,
            "path": request.path,
            "params": {k: v[0] if len(v) == 1 else v for k, v in request.query.items()},
            "auth": any(
                h in self.headers
                for h in ("Authorization", "ApiKey", "X-Api-Key")
            ),
            "connection": self.headers.get("Connection"),
            "body": body.decode("utf-8", "replace")[:2000] if body else None,
            "fault": fault.kind if fault else None,
            "time": time.time(),
            "status": None,
        }
        sandbox.log(entry)  # logged on arrival: a slow answer's client may be gone by its end
        if fault and fault.kind == "slow":
            time.sleep(fault.delay)
        if fault and fault.kind == "status":
            response = sandbox.app.error(fault.status, f"injected {fault.status}")
            if fault.retry_after is not None:
                response.headers["Retry-After"] = str(int(fault.retry_after))
        elif fault and fault.kind == "malformed":
            payload, ctype = sandbox.app.malformed_body()
            response = Response(200, payload, ctype)
        else:
            try:
                response = sandbox.app.handle(request)
            except Exception as exc:  # a sandbox bug must show, not hang
                response = Response.json({"error": f"sandbox error: {exc!r}"}, 500)
        entry["status"] = response.status
        if fault and fault.kind in {"reset", "truncate"}:
            self._send_broken(response, reset=fault.kind == "reset")
        else:
            self._send(response)

    def _admin(self, request: Request) -> Response:
        sandbox = self.server.sandbox
        action = request.path[len(ADMIN_PREFIX):].strip("/")
        try:
            if action == "info":
                return Response.json(sandbox.app.info())
            if action == "requests" and request.method == "DELETE":
                sandbox.clear_log()
                return Response.json({"ok": True})
            if action == "requests":
                return Response.json(sandbox.logged(request.param("path")))
            if action == "faults" and request.method == "DELETE":
                sandbox.clear_faults()
                return Response.json({"ok": True})
            if action == "faults":
                specs = request.json()
                for spec in specs if isinstance(specs, list) else [specs]:
                    sandbox.add_fault(**spec)
                return Response.json({"pending": sandbox.pending_faults()})
            if action == "advance":
                return Response.json(sandbox.app.advance(**(request.json() or {})))
            if action == "delete":
                return Response.json(sandbox.app.delete(**(request.json() or {})))
        except (TypeError, ValueError) as exc:
            return Response.json({"error": str(exc)}, 400)
        return Response.json({"error": f"unknown admin action {action!r}"}, 404)

    def _send(self, response: Response) -> None:
        self.send_response(response.status)
        self.send_header("Content-Type", response.content_type)
        for key, value in response.headers.items():
            self.send_header(key, value)
        if isinstance(response.body, (bytes, bytearray)):
            self.send_header("Content-Length", str(len(response.body)))
            if self.close_connection:
                self.send_header("Connection", "close")
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(response.body)
            return
        # A streamed body: chunked transfer encoding, in large writes.
        self.send_header("Transfer-Encoding", "chunked")
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        write = self.wfile.write
        for chunk in _coalesce(response.body):
            write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        write(b"0\r\n\r\n")

    def _send_broken(self, response: Response, *, reset: bool) -> None:
        body = response.body
        if not isinstance(body, (bytes, bytearray)):
            body = b"".join(_take_bytes(body, 1 << 20))
        self.send_response(response.status)
        self.send_header("Content-Type", response.content_type)
        self.send_header("Content-Length", str(max(len(body), 2)))
        self.end_headers()
        self.wfile.write(body[: len(body) // 2])
        self.wfile.flush()
        self.close_connection = True
        if reset:
            # SO_LINGER with a zero timeout makes close() send a TCP RST.
            self.connection.setsockopt(
                socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
            )
        self.connection.close()


def _coalesce(chunks: t.Iterable[bytes], size: int = 1 << 16) -> t.Iterator[bytes]:
    """Join small chunks into writes of about ``size`` bytes."""
    buffer: list[bytes] = []
    length = 0
    for chunk in chunks:
        if not chunk:
            continue
        buffer.append(chunk)
        length += len(chunk)
        if length >= size:
            yield b"".join(buffer)
            buffer, length = [], 0
    if buffer:
        yield b"".join(buffer)


def _take_bytes(chunks: t.Iterable[bytes], limit: int) -> t.Iterator[bytes]:
    taken = 0
    for chunk in chunks:
        yield chunk
        taken += len(chunk)
        if taken >= limit:
            return
