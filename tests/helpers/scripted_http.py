"""A tiny scripted HTTP server on 127.0.0.1 for single edge cases the emulator cannot produce."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Answer:
    """One HTTP answer: status, body and extra headers (``Content-Type`` defaults to JSON)."""

    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)


class ScriptedServer:
    """
    HTTP/1.1 server answering every request with :attr:`answer` and recording ``(method, path)`` of each.

    :attr:`answer` is an :class:`Answer`, or a callable taking the request headers (names lower-cased) and
    returning one (to echo what a client sent, as some misbehaving servers do).
    """

    def __init__(self) -> None:
        self.answer: Answer | Callable[[dict[str, str]], Answer] = Answer(200, b"{}")
        self.requests: list[tuple[str, str]] = []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                """Stay quiet."""

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                if length:
                    self.rfile.read(length)
                owner.requests.append((self.command, self.path))
                answer = owner.answer
                if callable(answer):
                    answer = answer({name.lower(): value for name, value in self.headers.items()})
                self.send_response(answer.status)
                for name, value in {"Content-Type": "application/json", **answer.headers}.items():
                    self.send_header(name, value)
                if answer.status not in (204, 304):
                    self.send_header("Content-Length", str(len(answer.body)))
                self.end_headers()
                if answer.status not in (204, 304):
                    self.wfile.write(answer.body)

            do_GET = _serve
            do_POST = _serve

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def url(self) -> str:
        """The server's base URL."""
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> ScriptedServer:
        """Serve in a daemon thread; return self."""
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the listening socket."""
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
