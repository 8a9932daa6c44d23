"""HTTP plumbing of the emulator (internal): the threading server, the handler, responses, the request log.

Nothing here knows the Midjourney API: the server hands every request to one callable.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, TypeGuard
from urllib.parse import urlsplit


@dataclass(frozen=True)
class RecordedRequest:
    """One request the emulator received.

    Attributes:
        method: HTTP method.
        path: Request path without the query string.
        query: Raw query string ("" when none).
        headers: Request headers, names lower-cased.
        body: Raw request body.
        json: The body parsed as JSON, or None.
        status: HTTP status sent, or 0 when the connection was dropped without a response.
        fault: Injected fault kind, if any (``"truncated"`` for ``media_drop_after_bytes``).
        time: ``time.monotonic()`` when the request arrived.
        route: Route name, one of :data:`ROUTES`.
        mode: Speed mode from a ``/mj-fast``-style prefix, or None.
    """

    method: str
    path: str
    query: str
    headers: dict[str, str]
    body: bytes
    json: Any
    status: int
    fault: str | None
    time: float
    route: str = "other"
    mode: str | None = None


class Rec:
    """Mutable request-log entry, completed when the response is known."""

    __slots__ = ("body", "fault", "headers", "json", "method", "mode", "path", "query", "route", "status", "time")
    body: bytes
    fault: str | None
    headers: dict[str, str]
    json: Any
    method: str
    mode: str | None
    path: str
    query: str
    route: str
    status: int
    time: float

    def __init__(self, **kwargs: Any) -> None:
        for key, value in kwargs.items():
            setattr(self, key, value)

    def freeze(self) -> RecordedRequest:
        """Return the immutable :class:`RecordedRequest` of this entry."""
        return RecordedRequest(**{name: getattr(self, name) for name in self.__slots__})


@dataclass
class Resp:
    """A complete in-memory response."""

    status: int
    body: bytes = b""
    content_type: str | None = "application/json; charset=utf-8"
    headers: dict[str, str] = field(default_factory=dict)


def json_resp(status: int, obj: Any, headers: dict[str, str] | None = None) -> Resp:
    """Return ``obj`` as a JSON response (non-ASCII kept as UTF-8, as the Chinese servers send it)."""
    return Resp(status, json.dumps(obj, ensure_ascii=False).encode("utf-8"), headers=headers or {})


def code_resp(code: int, description: str, status: int = 200, **properties: Any) -> Resp:
    """Return the proxies' ``{code, description, result: null, properties}`` answer."""
    return json_resp(status, {"code": code, "description": description, "result": None, "properties": properties})


def text_resp(status: int, text: str | None = None) -> Resp:
    """Return a plain-text answer, ``"<status> <phrase>"`` unless ``text`` is given."""
    if text is None:
        try:
            phrase = HTTPStatus(status).phrase
        except ValueError:
            phrase = "Error"
        text = f"{status} {phrase}"
    return Resp(status, text.encode(), content_type="text/plain; charset=utf-8")


def not_found() -> Resp:
    """Return what every flavour answers on a route it does not have."""
    return text_resp(404, "Not Found")


def is_loopback_url(url: str) -> bool:
    """Return True when ``url`` is http(s) and its host is a loopback name or address."""
    try:
        parts = urlsplit(url)
        host = parts.hostname
        _ = parts.port
    except ValueError:
        return False
    if parts.scheme not in ("http", "https") or not host:
        return False
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def is_int(value: Any) -> TypeGuard[int]:
    """Return True for a JSON integer (``bool`` excluded)."""
    return isinstance(value, int) and not isinstance(value, bool)


class Server(ThreadingHTTPServer):
    """Threading HTTP server that tracks its connections so that stop() can close them."""

    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 1024

    def __init__(self, address: tuple[str, int], handle: Callable[[Handler], None]) -> None:
        self.dispatch = handle
        self._conns: dict[socket.socket, threading.Thread] = {}
        self._conns_lock = threading.Lock()
        super().__init__(address, Handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        """Serve one connection in its own daemon thread, remembering socket and thread."""
        thread = threading.Thread(
            target=self.process_request_thread,
            args=(request, client_address),
            name="mjvideo-emulator-conn",
            daemon=True,
        )
        with self._conns_lock:
            self._conns[request] = thread
        thread.start()

    def shutdown_request(self, request: Any) -> None:
        """Forget and close a finished connection."""
        with self._conns_lock:
            self._conns.pop(request, None)
        super().shutdown_request(request)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Stay silent: a client that vanishes mid-request is normal here."""

    def close_connections(self, timeout: float) -> None:
        """Shut down every open connection and wait (bounded) for its thread."""
        with self._conns_lock:
            items = list(self._conns.items())
        for sock, _thread in items:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        deadline = time.monotonic() + timeout
        for _sock, thread in items:
            thread.join(max(0.0, deadline - time.monotonic()))


class Dropped(Exception):
    """The response was abandoned (fault or client gone)."""


class Handler(BaseHTTPRequestHandler):
    """Per-connection request handler; all logic lives in the server's ``dispatch`` callable."""

    protocol_version = "HTTP/1.1"
    server_version = "mjvideo-emulator/1.0"
    sys_version = ""
    timeout = 300
    #: TCP_NODELAY, as real servers set it: without it each keep-alive answer waits for a delayed ACK (~40 ms).
    disable_nagle_algorithm = True
    server: Server

    def version_string(self) -> str:
        """Return the ``Server`` header value."""
        return self.server_version

    def log_message(self, format: str, *args: Any) -> None:
        """Silence per-request logging."""

    def do_GET(self) -> None:
        """Handle GET."""
        self.server.dispatch(self)

    do_POST = do_GET
    do_HEAD = do_GET
    do_PUT = do_GET
    do_DELETE = do_GET
    do_PATCH = do_GET
    do_OPTIONS = do_GET

    def read_body(self) -> bytes:
        """Read the request body (Content-Length or chunked)."""
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            parts: list[bytes] = []
            while True:
                line = self.rfile.readline(65537)
                size = int(line.split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(parts)
                parts.append(self.rfile.read(size))
                self.rfile.readline(65537)
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = 0
        return self.rfile.read(length) if length > 0 else b""

    def send(self, resp: Resp) -> None:
        """Send a complete in-memory response."""
        self.send_response(resp.status)
        if resp.content_type and resp.status not in (204, 304):
            self.send_header("Content-Type", resp.content_type)
        for key, value in resp.headers.items():
            self.send_header(key, value)
        if resp.status not in (204, 304):
            self.send_header("Content-Length", str(len(resp.body)))
        self.end_headers()
        if self.command != "HEAD" and resp.status not in (204, 304) and resp.body:
            self.wfile.write(resp.body)

    def drop(self) -> None:
        """Close the connection without answering."""
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)
