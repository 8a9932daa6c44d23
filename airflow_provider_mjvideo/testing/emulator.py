"""A local HTTP emulator of the midjourney-proxy video API family (stdlib only).

It serves the routes real servers expose (``/mj/submit/video``, ``/mj/task/{id}/fetch``,
``/mj/task/list-by-condition``, ``/mj/task/{id}/cancel``) with the quirks of the trueai, novicezk and
new-api flavours, a fake CDN for the resulting clips (``/media/{task}/{index}.mp4``), deterministic and
random fault injection, and notifyHook callbacks to loopback URLs. It never opens a connection to a
non-loopback address.

Example::

    with MidjourneyEmulator(EmulatorConfig(video_duration=0.5)) as emu:
        requests.post(f"{emu.url}/mj/submit/video", json={...}, headers={"Authorization": "Bearer emulator-key"})
"""

from __future__ import annotations

import collections
import contextlib
import copy
import http.client
import ipaddress
import json
import random
import re
import socket
import threading
import time
import traceback
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, TypeGuard
from urllib.parse import urlsplit

from airflow_provider_mjvideo.testing import media

__all__ = [
    "AUTH_STYLES",
    "FAULT_KINDS",
    "FLAVORS",
    "ROUTES",
    "URL_SHAPES",
    "EmulatorConfig",
    "FaultConfig",
    "MidjourneyEmulator",
    "RecordedRequest",
]

ROUTES = ("submit", "fetch", "list", "cancel", "media", "other")
"""Route names used in the request log, :meth:`MidjourneyEmulator.count` and ``fail_next``."""
FAULT_KINDS = ("500", "502", "503", "504", "429", "slow", "drop", "malformed")
"""Injectable fault kinds, in the order in which rates are accumulated for a draw."""
FLAVORS = ("trueai", "novicezk", "newapi")
AUTH_STYLES = ("bearer", "mj-api-secret", "raw", "any")
URL_SHAPES = ("objects", "strings", "video_url_only", "video_urls_json_string", "image_url_mp4")
UNKNOWN_FETCH = ("empty", "null", "204")
SPEED_PREFIXES = {"mj-fast": "fast", "mj-relax": "relax", "mj-turbo": "turbo"}

_ROUTE_GROUP = {"submit": "submit", "fetch": "fetch", "list": "fetch", "cancel": "fetch", "media": "media"}
_TERMINAL = ("SUCCESS", "FAILURE", "CANCEL")
_FAIL_REASON = "Emulated failure"
_FETCH_RE = re.compile(r"^/mj/task/([^/]+)/fetch$")
_CANCEL_RE = re.compile(r"^/mj/task/([^/]+)/cancel$")
_MEDIA_RE = re.compile(r"^/media/([^/]+)/(\d+)\.(mp4|jpg)$")
_RANGE_RE = re.compile(r"^bytes=(\d*)-(\d*)$")
_HTML_ERROR = (
    "<html>\r\n<head><title>{code} {phrase}</title></head>\r\n<body>\r\n"
    "<center><h1>{code} {phrase}</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n"
)


@dataclass
class FaultConfig:
    """Fault injection settings (mutable; read on every request).

    Rates map a fault kind (see :data:`FAULT_KINDS`) to a probability; one uniform draw per request
    picks at most one kind by cumulative rate, so rates of a group should add up to at most 1.

    Attributes:
        seed: Seed of the fault random generator (re-seeded whenever this object or the seed changes).
        fetch: Rates for fetch, list-by-condition and cancel requests.
        submit: Rates for submit requests; a faulted submit creates no task.
        media: Rates for clip and thumbnail downloads.
        retry_after: Seconds sent in the ``Retry-After`` header of injected 429s.
        slow_seconds: Delay of the "slow" fault before the normal answer.
        fail_next: Deterministic queue of ``(target, kind)``; each entry is consumed by the first request
            whose route name (``"fetch"``, ``"list"``, ...), route group (``"fetch"`` covers list and
            cancel too) matches ``target``, or any API request when ``target`` is ``"*"``.
    """

    seed: int = 0
    fetch: dict[str, float] = field(default_factory=dict)
    submit: dict[str, float] = field(default_factory=dict)
    media: dict[str, float] = field(default_factory=dict)
    retry_after: float = 0.1
    slow_seconds: float = 0.5
    fail_next: list[tuple[str, str]] = field(default_factory=list)


@dataclass
class EmulatorConfig:
    """Behaviour of a :class:`MidjourneyEmulator` (mutable; fields are read on every request).

    Attributes:
        api_key: The key clients must send.
        auth_style: Header the server demands: ``"bearer"`` (``Authorization: Bearer <key>``),
            ``"mj-api-secret"``, ``"raw"`` (``Authorization: <key>`` or ``mj-api-secret``; Bearer is
            rejected) or ``"any"`` of those.
        flavor: ``"trueai"``, ``"novicezk"`` or ``"newapi"`` (error shapes, routes, quirks).
        video_duration: Seconds from submit to SUCCESS (snapshotted per task at submit).
        urls_after_success: Seconds a task is SUCCESS without video URLs (snapshotted per task).
        url_shape: Where clip URLs appear on SUCCESS, one of :data:`URL_SHAPES`.
        batch_size: Clips per task unless the submit body's ``batchSize`` (1, 2 or 4) says otherwise.
        fail_rate: Chance that an accepted task ends in FAILURE (seeded by ``seed``).
        seed: Seed of the outcome random generator (applied at construction and :meth:`reset`).
        submit_codes: Queue of codes forced on the next submits (1, 21, 22 accept; others reject).
        unknown_fetch: trueai answer for an unknown task id: ``"empty"`` (200, empty body),
            ``"null"`` (200, ``null``) or ``"204"``.
        newapi_blank_status_seconds: new-api serves ``status: ""`` for this long after submit.
        zero_times: Send 0 rather than null for unset startTime/finishTime.
        extend_action_name: ``action`` of extend tasks (``"VIDEO"`` or ``"VIDEO_EXTEND"``).
        list_by_condition_enabled: When False the list-by-condition route answers 404.
        max_list_ids: When set, list-by-condition with more ids answers HTTP 400.
        path_prefix: Base path of the API (e.g. ``"/api"``); API routes outside it answer 404.
        clip_size_bytes: When set, clips are streamed generated MP4s of exactly this size.
        media_status: ``"task_id/index"`` or ``"*"`` mapped to an HTTP status served instead of a clip.
        media_content_type: ``Content-Type`` of clip downloads.
        media_drop_after_bytes: Close clip downloads after this many body bytes (full Content-Length).
        media_host: Host name written in clip URLs instead of the bound address (e.g. ``"localhost"``
            while the API is reached as ``127.0.0.1``), so that clips sit on another origin, like a CDN.
        response_delay: Seconds added before every API (non-media) response.
        faults: Fault injection settings.
        fail_next: Same as ``faults.fail_next``; consulted first.
        max_recorded_requests: Oldest request log entries are dropped beyond this many.
    """

    api_key: str = "emulator-key"
    auth_style: str = "bearer"
    flavor: str = "trueai"
    video_duration: float = 10.0
    urls_after_success: float = 0.0
    url_shape: str = "objects"
    batch_size: int = 4
    fail_rate: float = 0.0
    seed: int = 0
    submit_codes: list[int] = field(default_factory=list)
    unknown_fetch: str = "empty"
    newapi_blank_status_seconds: float = 0.2
    zero_times: bool = False
    extend_action_name: str = "VIDEO"
    list_by_condition_enabled: bool = True
    max_list_ids: int | None = None
    path_prefix: str = ""
    clip_size_bytes: int | None = None
    media_status: dict[str, int] = field(default_factory=dict)
    media_content_type: str = "video/mp4"
    media_drop_after_bytes: int | None = None
    media_host: str | None = None
    response_delay: float = 0.0
    faults: FaultConfig = field(default_factory=FaultConfig)
    fail_next: list[tuple[str, str]] = field(default_factory=list)
    max_recorded_requests: int = 100_000

    def __post_init__(self) -> None:
        """Reject unknown enumerated values early."""
        for name, allowed in (
            ("auth_style", AUTH_STYLES),
            ("flavor", FLAVORS),
            ("url_shape", URL_SHAPES),
            ("unknown_fetch", UNKNOWN_FETCH),
        ):
            if getattr(self, name) not in allowed:
                raise ValueError(f"{name} must be one of {allowed}, got {getattr(self, name)!r}")
        if self.batch_size not in (1, 2, 4):
            raise ValueError(f"batch_size must be 1, 2 or 4, got {self.batch_size!r}")


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


class _Rec:
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
        return RecordedRequest(**{name: getattr(self, name) for name in self.__slots__})


@dataclass
class _Task:
    """Internal state of one emulated task."""

    id: str
    kind: str
    prompt: str
    motion: str
    image: str
    state: Any
    mode: str | None
    batch_size: int
    outcome: str
    submit_code: int
    notify_hook: str | None
    parent_id: str | None
    index: int | None
    body: dict[str, Any]
    submit_mono: float
    submit_wall: float
    duration: float
    urls_after_success: float
    forced_status: str | None = None
    forced_mono: float | None = None
    forced_reason: str | None = None
    last_notified: tuple[Any, ...] | None = None


@dataclass
class _Resp:
    status: int
    body: bytes = b""
    content_type: str | None = "application/json; charset=utf-8"
    headers: dict[str, str] = field(default_factory=dict)


def _json_resp(status: int, obj: Any, headers: dict[str, str] | None = None) -> _Resp:
    return _Resp(status, json.dumps(obj, ensure_ascii=False).encode("utf-8"), headers=headers or {})


def _code_resp(code: int, description: str, status: int = 200, **properties: Any) -> _Resp:
    return _json_resp(status, {"code": code, "description": description, "result": None, "properties": properties})


def _is_loopback_url(url: str) -> bool:
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


def _is_int(value: Any) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def _new_counters() -> dict[str, Any]:
    return {
        "requests": 0,
        "submit": 0,
        "submit_accepted": 0,
        "submit_rejected": 0,
        "fetch": 0,
        "list": 0,
        "cancel": 0,
        "media": 0,
        "other": 0,
        "auth_failed": 0,
        "faults": {},
        "notify_sent": 0,
        "notify_failed": 0,
    }


class _Server(ThreadingHTTPServer):
    """Threading HTTP server that tracks its connections so that stop() can close them."""

    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 1024

    def __init__(self, address: tuple[str, int], emulator: MidjourneyEmulator) -> None:
        self.emulator = emulator
        self._conns: dict[socket.socket, threading.Thread] = {}
        self._conns_lock = threading.Lock()
        super().__init__(address, _Handler)

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


class _Dropped(Exception):
    """The response was abandoned (fault or client gone)."""


class _Handler(BaseHTTPRequestHandler):
    """Per-connection request handler; all logic lives in the emulator."""

    protocol_version = "HTTP/1.1"
    server_version = "mjvideo-emulator/1.0"
    sys_version = ""
    timeout = 300
    #: TCP_NODELAY, as real servers set it: without it each keep-alive answer waits for a delayed ACK (~40 ms).
    disable_nagle_algorithm = True
    server: _Server

    def version_string(self) -> str:
        """Return the ``Server`` header value."""
        return self.server_version

    def log_message(self, format: str, *args: Any) -> None:
        """Silence per-request logging."""

    def do_GET(self) -> None:
        """Handle GET."""
        self.server.emulator._handle(self)

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

    def send(self, resp: _Resp) -> None:
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


class MidjourneyEmulator:
    """A real HTTP server on a loopback address emulating midjourney-proxy style video APIs.

    Args:
        config: Behaviour; a default :class:`EmulatorConfig` when None. Kept live as :attr:`config`.
        host: Loopback address to bind.
        port: Port to bind; 0 picks a free one.

    Raises:
        ValueError: ``host`` is not a loopback address.
    """

    def __init__(self, config: EmulatorConfig | None = None, *, host: str = "127.0.0.1", port: int = 0) -> None:
        if not _is_loopback_url(f"http://{host if ':' not in host else f'[{host}]'}/"):
            raise ValueError(f"the emulator only binds loopback addresses, not {host!r}")
        self.config: EmulatorConfig = config if config is not None else EmulatorConfig()
        self.host = host
        self._requested_port = port
        self._lock = threading.Lock()
        self._tasks: dict[str, _Task] = {}
        self._watched: set[str] = set()
        self._log: collections.deque[_Rec] = collections.deque()
        self._counters: dict[str, Any] = _new_counters()
        self._notifications: list[tuple[str, dict[str, Any]]] = []
        self._errors: list[str] = []
        self._last_id = 0
        self._rng = random.Random(self.config.seed)
        self._fault_rng = random.Random(0)
        self._fault_key: tuple[int, int] | None = None
        self._server: _Server | None = None
        self._serve_thread: threading.Thread | None = None
        self._notify_thread: threading.Thread | None = None
        self._stop_event = threading.Event()

    # ----------------------------------------------------------------- lifecycle

    def start(self) -> MidjourneyEmulator:
        """Bind and start serving in background threads; return self."""
        if self._server is not None:
            return self
        self._stop_event.clear()
        server = _Server((self.host, self._requested_port), self)
        self._server = server
        self._serve_thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="mjvideo-emulator", daemon=True
        )
        self._serve_thread.start()
        self._notify_thread = threading.Thread(target=self._notify_loop, name="mjvideo-emulator-notify", daemon=True)
        self._notify_thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, close the listening socket and every open connection."""
        server = self._server
        if server is None:
            return
        self._stop_event.set()
        server.shutdown()
        server.close_connections(timeout=5.0)
        server.server_close()
        for thread in (self._serve_thread, self._notify_thread):
            if thread is not None:
                thread.join(timeout=5.0)
        self._server = None
        self._serve_thread = None
        self._notify_thread = None

    def __enter__(self) -> MidjourneyEmulator:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        where = self.url if self._server is not None else "stopped"
        return f"<MidjourneyEmulator {where} flavor={self.config.flavor}>"

    # ----------------------------------------------------------------- public state

    @property
    def port(self) -> int:
        """The bound port (only while started)."""
        if self._server is None:
            raise RuntimeError("the emulator is not started")
        return int(self._server.server_address[1])

    @property
    def root_url(self) -> str:
        """``http://host:port`` without ``path_prefix`` (where clips are served)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def url(self) -> str:
        """The API base URL, ``path_prefix`` included, without a trailing slash."""
        return self.root_url + self._prefix(self.config)

    def connection_json(self, conn_type: str = "midjourney") -> str:
        """Return an Airflow connection as JSON (the value of an ``AIRFLOW_CONN_<ID>`` variable)."""
        style = self.config.auth_style if self.config.auth_style != "any" else "bearer"
        return json.dumps(
            {
                "conn_type": conn_type,
                "host": self.url,
                "password": self.config.api_key,
                "extra": {"auth_style": style},
            }
        )

    @property
    def connection_uri(self) -> str:
        """Same as :meth:`connection_json` with the default connection type."""
        return self.connection_json()

    @property
    def requests(self) -> list[RecordedRequest]:
        """A copy of the request log, oldest first."""
        with self._lock:
            recs = list(self._log)
        return [rec.freeze() for rec in recs]

    def requests_to(self, target: str) -> list[RecordedRequest]:
        """Return logged requests of route name ``target`` or whose path ends with ``target``."""
        if target in ROUTES:
            return [r for r in self.requests if r.route == target]
        return [r for r in self.requests if r.path.endswith(target)]

    def count(self, target: str) -> int:
        """Return how many logged requests :meth:`requests_to` ``target`` matches."""
        return len(self.requests_to(target))

    @property
    def counters(self) -> dict[str, Any]:
        """A deep copy of the counters."""
        with self._lock:
            return copy.deepcopy(self._counters)

    @property
    def notifications(self) -> list[tuple[str, dict[str, Any]]]:
        """A copy of the ``(url, payload)`` notifyHook POSTs attempted, oldest first."""
        with self._lock:
            return list(self._notifications)

    @property
    def errors(self) -> list[str]:
        """Tracebacks of unexpected emulator errors (each also answered with HTTP 500); empty normally."""
        with self._lock:
            return list(self._errors)

    @property
    def tasks(self) -> dict[str, dict[str, Any]]:
        """Snapshots of every task: internal fields plus current ``status``, ``progress`` and ``json``."""
        now = time.monotonic()
        cfg = self.config
        with self._lock:
            out = {}
            for task_id, task in self._tasks.items():
                snap = asdict(task)
                public = self._task_json(task, now, cfg)
                snap.update(status=public["status"], progress=public["progress"], json=public)
                out[task_id] = snap
            return out

    def reset(self) -> None:
        """Forget tasks, the request log, notifications and counters (the config is kept)."""
        with self._lock:
            self._tasks.clear()
            self._watched.clear()
            self._log.clear()
            self._notifications.clear()
            self._errors.clear()
            self._counters = _new_counters()
            self._rng = random.Random(self.config.seed)
            self._fault_key = None

    def complete_task(self, task_id: str) -> None:
        """Force task ``task_id`` to SUCCESS now (URLs follow after ``urls_after_success``)."""
        self._force(task_id, "SUCCESS", None)

    def fail_task(self, task_id: str, reason: str = _FAIL_REASON) -> None:
        """Force task ``task_id`` to FAILURE now with ``failReason`` ``reason``."""
        self._force(task_id, "FAILURE", reason)

    def _force(self, task_id: str, status: str, reason: str | None) -> None:
        with self._lock:
            task = self._tasks.get(str(task_id))
            if task is None:
                raise KeyError(f"unknown task id {task_id!r}")
            task.forced_status = status
            task.forced_mono = time.monotonic()
            task.forced_reason = reason
            if task.notify_hook:
                self._watched.add(task.id)

    # ----------------------------------------------------------------- task model

    @staticmethod
    def _prefix(cfg: EmulatorConfig) -> str:
        prefix = cfg.path_prefix.strip("/")
        return f"/{prefix}" if prefix else ""

    def _next_id(self) -> str:
        # Odd 17-digit ids above 2**53: a client that parses them as floats loses the last digit.
        candidate = int(time.time() * 1000) * 10_000 + 1
        self._last_id = candidate if candidate > self._last_id else self._last_id + 2
        return str(self._last_id)

    def _timeline(self, task: _Task, now: float) -> tuple[str, str, float | None, float | None, str | None]:
        """Return (status, progress, start_mono, finish_mono, fail_reason) of ``task`` at ``now``."""
        duration = max(task.duration, 1e-6)
        start = task.submit_mono + 0.1 * duration
        if task.forced_status is not None and task.forced_mono is not None and task.forced_mono <= now:
            forced_at = task.forced_mono
            progress = "100%" if task.forced_status == "SUCCESS" else ""
            return task.forced_status, progress, min(start, forced_at), forced_at, task.forced_reason
        elapsed = now - task.submit_mono
        if task.outcome in ("failure", "cancel") and elapsed >= 0.5 * duration:
            finish = task.submit_mono + 0.5 * duration
            if task.outcome == "failure":
                return "FAILURE", "", start, finish, _FAIL_REASON
            return "CANCEL", "", start, finish, None
        if task.outcome == "success" and elapsed >= duration:
            return "SUCCESS", "100%", start, task.submit_mono + duration, None
        if elapsed < 0.1 * duration:
            return "SUBMITTED", "0%", None, None, None
        if task.outcome == "modal":
            return "MODAL", "0%", start, None, None
        pct = min(99, max(0, int(100 * (elapsed - 0.1 * duration) / (0.9 * duration))))
        return "IN_PROGRESS", f"{pct}%", start, None, None

    def _urls_ready(self, task: _Task, now: float) -> bool:
        """Return True when ``task`` is SUCCESS and its clip URLs are published."""
        status, _progress, _start, finish, _reason = self._timeline(task, now)
        return status == "SUCCESS" and finish is not None and now - finish >= task.urls_after_success

    def _clip_urls(self, task: _Task) -> list[tuple[str, str]]:
        root = self.root_url
        if self.config.media_host:
            root = f"http://{self.config.media_host}:{self.port}"
        return [(f"{root}/media/{task.id}/{i}.mp4", f"{root}/media/{task.id}/{i}.jpg") for i in range(task.batch_size)]

    def _task_json(self, task: _Task, now: float, cfg: EmulatorConfig) -> dict[str, Any]:
        """Build the public task object as served by fetch, list-by-condition and notifyHook."""
        status, progress, start, finish, reason = self._timeline(task, now)
        unset = 0 if cfg.zero_times else None

        def wall_ms(mono: float | None) -> int | None:
            if mono is None:
                return unset
            return int((task.submit_wall + (mono - task.submit_mono)) * 1000)

        blank = cfg.flavor == "newapi" and task.forced_status is None
        if blank and now - task.submit_mono < cfg.newapi_blank_status_seconds:
            status, progress = "", ""
        urls_ready = self._urls_ready(task, now)
        clips = self._clip_urls(task) if urls_ready else []
        properties: dict[str, Any] = {
            "mode": task.mode,
            "motion": task.motion,
            "batchSize": task.batch_size,
            "finalPrompt": task.prompt,
            "submitCode": task.submit_code,
        }
        if task.kind == "extend":
            properties.update(parentId=task.parent_id, index=task.index)
        buttons = []
        if urls_ready:
            buttons = [
                {"customId": f"MJ::JOB::video_extend::{i + 1}::{task.id}", "label": f"Extend {i + 1}", "type": 2}
                for i in range(task.batch_size)
            ]
        obj: dict[str, Any] = {
            "id": task.id,
            "action": cfg.extend_action_name if task.kind == "extend" else "VIDEO",
            "status": status,
            "progress": progress,
            "prompt": task.prompt,
            "promptEn": task.prompt,
            "description": f"/video {task.prompt}",
            "state": task.state,
            "submitTime": wall_ms(task.submit_mono),
            "startTime": wall_ms(start),
            "finishTime": wall_ms(finish),
            "imageUrl": task.image or None,
            "failReason": reason if status == "FAILURE" else None,
            "buttons": buttons,
            "properties": properties,
            "botType": "MID_JOURNEY",
            "nonce": f"{task.id[-10:]}",
            "instanceId": "emulator-instance-1",
            "displays": {"submitTime": "", "finishTime": ""},
        }
        shape = cfg.url_shape
        if shape == "objects":
            obj["videoUrl"] = clips[0][0] if clips else None
            obj["videoUrls"] = [{"url": url, "thumbnail": thumb} for url, thumb in clips]
        elif shape == "strings":
            obj["videoUrls"] = [url for url, _thumb in clips]
        elif shape == "video_url_only":
            obj["videoUrl"] = clips[0][0] if clips else None
        elif shape == "video_urls_json_string":
            obj["video_urls"] = json.dumps([url for url, _thumb in clips]) if clips else None
        elif shape == "image_url_mp4" and clips:
            obj["imageUrl"] = clips[0][0]
        return obj

    # ----------------------------------------------------------------- request handling

    def _handle(self, handler: _Handler) -> None:
        cfg = self.config
        arrived = time.monotonic()
        body = handler.read_body()
        split = urlsplit(handler.path)
        route, mode, arg, media_info = self._route(handler.command, split.path, cfg)
        parsed: Any = None
        if body and route != "media":
            try:
                parsed = json.loads(body)
            except ValueError:
                parsed = None
        rec = _Rec(
            method=handler.command,
            path=split.path,
            query=split.query,
            headers={k.lower(): v for k, v in handler.headers.items()},
            body=body if route != "media" else b"",
            json=parsed,
            status=0,
            fault=None,
            time=arrived,
            route=route,
            mode=mode,
        )
        with self._lock:
            self._log.append(rec)
            while len(self._log) > max(1, cfg.max_recorded_requests):
                self._log.popleft()
            self._counters["requests"] += 1
            self._counters[route] += 1
        try:
            self._respond(handler, cfg, rec, route, mode, arg, media_info, body, parsed)
        except (_Dropped, OSError):
            handler.close_connection = True
        except Exception as exc:
            # A bug in the emulator: surface it as a 500 (when nothing was sent yet) and in ``errors``.
            with self._lock:
                self._errors.append(f"{handler.command} {split.path}: {traceback.format_exc()}")
            handler.close_connection = True
            if not rec.status:
                rec.status = 500
                rec.fault = "emulator_error"
                with contextlib.suppress(OSError):
                    handler.send(_json_resp(500, {"code": 9, "description": f"Emulator error: {exc!r}"}))

    def _route(
        self, method: str, path: str, cfg: EmulatorConfig
    ) -> tuple[str, str | None, str | None, tuple[str, int, str] | None]:
        """Return (route, speed mode, task id, media (task, index, ext)) for a request."""
        prefix = self._prefix(cfg)
        if len(path) > 1:
            path = path.rstrip("/")
        for candidate in (path, path[len(prefix) :] if prefix and path.startswith(prefix + "/") else None):
            match = _MEDIA_RE.match(candidate) if candidate else None
            if match and method in ("GET", "HEAD"):
                return "media", None, None, (match.group(1), int(match.group(2)), match.group(3))
        if prefix:
            if not path.startswith(prefix + "/"):
                return "other", None, None, None
            path = path[len(prefix) :]
        mode = None
        head, _, rest = path.lstrip("/").partition("/")
        if head in SPEED_PREFIXES:
            mode = SPEED_PREFIXES[head]
            path = "/" + rest
        if method == "POST" and path == "/mj/submit/video":
            return "submit", mode, None, None
        if method == "POST" and path == "/mj/task/list-by-condition":
            return "list", mode, None, None
        match = _FETCH_RE.match(path)
        if match and method == "GET":
            return "fetch", mode, match.group(1), None
        match = _CANCEL_RE.match(path)
        if match and method == "POST":
            return "cancel", mode, match.group(1), None
        return "other", mode, None, None

    def _draw_fault(self, route: str, cfg: EmulatorConfig) -> str | None:
        """Pick the injected fault for a request of ``route`` (deterministic queue first, then rates)."""
        group = _ROUTE_GROUP.get(route)
        if group is None:
            return None
        faults = cfg.faults
        with self._lock:
            for queue in (cfg.fail_next, faults.fail_next):
                for pos, (target, kind) in enumerate(queue):
                    if target in (route, group) or (target == "*" and route != "media"):
                        del queue[pos]
                        return kind
            rates = getattr(faults, group, None) or {}
            if not any(rates.get(kind, 0) > 0 for kind in FAULT_KINDS):
                return None
            key = (id(faults), faults.seed)
            if key != self._fault_key:
                self._fault_rng = random.Random(faults.seed)
                self._fault_key = key
            draw = self._fault_rng.random()
        total = 0.0
        for kind in FAULT_KINDS:
            total += max(0.0, float(rates.get(kind, 0.0)))
            if draw < total:
                return kind
        return None

    def _fault_response(self, kind: str, cfg: EmulatorConfig) -> _Resp:
        if kind == "500":
            return _json_resp(500, {"code": 9, "description": "Internal error"})
        if kind in ("502", "503", "504"):
            code = int(kind)
            html = _HTML_ERROR.format(code=code, phrase=HTTPStatus(code).phrase)
            return _Resp(code, html.encode(), content_type="text/html; charset=utf-8")
        if kind == "429":
            retry = cfg.faults.retry_after
            retry_text = str(int(retry)) if float(retry).is_integer() else f"{retry:g}"
            return _json_resp(429, {"code": 30, "description": "Too many requests"}, {"Retry-After": retry_text})
        if kind == "malformed":
            return _Resp(200, b'{"code": 1, "status": "IN_PROGRESS", "progress": "4')
        raise ValueError(f"unknown fault kind {kind!r}")

    def _authorized(self, handler: _Handler, cfg: EmulatorConfig) -> bool:
        key = cfg.api_key
        authorization = handler.headers.get("Authorization")
        secret = handler.headers.get("mj-api-secret")
        bearer = False
        if authorization is not None:
            scheme, _, token = authorization.strip().partition(" ")
            bearer = scheme.lower() == "bearer" and token.strip() == key
        raw = authorization is not None and authorization.strip() == key
        has_secret = secret is not None and secret.strip() == key
        style = cfg.auth_style
        if style == "bearer":
            return bearer
        if style == "mj-api-secret":
            return has_secret
        if style == "raw":
            return raw or has_secret
        return bearer or raw or has_secret

    @staticmethod
    def _unauthorized(cfg: EmulatorConfig) -> _Resp:
        if cfg.flavor == "novicezk":
            return _Resp(401, b"", content_type=None)
        if cfg.flavor == "newapi":
            return _json_resp(
                401, {"error": {"message": "Invalid token (emulator)", "type": "new_api_error", "code": ""}}
            )
        return _Resp(401, b"Unauthorized: invalid or missing API key", content_type="text/plain; charset=utf-8")

    def _respond(
        self,
        handler: _Handler,
        cfg: EmulatorConfig,
        rec: _Rec,
        route: str,
        mode: str | None,
        arg: str | None,
        media_info: tuple[str, int, str] | None,
        body: bytes,
        parsed: Any,
    ) -> None:
        fault = self._draw_fault(route, cfg)
        if fault is not None:
            rec.fault = fault
            with self._lock:
                faults = self._counters["faults"]
                faults[fault] = faults.get(fault, 0) + 1
            if fault == "drop":
                handler.drop()
                raise _Dropped
            if fault == "slow":
                time.sleep(max(0.0, cfg.faults.slow_seconds))
            else:
                if route != "media" and cfg.response_delay > 0:
                    time.sleep(cfg.response_delay)
                resp = self._fault_response(fault, cfg)
                rec.status = resp.status
                handler.send(resp)
                return
        if route == "media":
            assert media_info is not None
            self._serve_media(handler, cfg, rec, *media_info)
            return
        if cfg.response_delay > 0:
            time.sleep(cfg.response_delay)
        resp = self._api(handler, cfg, route, mode, arg, parsed, body)
        rec.status = resp.status
        handler.send(resp)

    def _api(
        self,
        handler: _Handler,
        cfg: EmulatorConfig,
        route: str,
        mode: str | None,
        arg: str | None,
        parsed: Any,
        body: bytes,
    ) -> _Resp:
        not_found = _Resp(404, b"Not Found", content_type="text/plain; charset=utf-8")
        if route == "other":
            return not_found
        if route == "list" and not cfg.list_by_condition_enabled:
            return not_found
        if route == "cancel" and cfg.flavor != "trueai":
            return not_found
        if not self._authorized(handler, cfg):
            with self._lock:
                self._counters["auth_failed"] += 1
            return self._unauthorized(cfg)
        if route == "submit":
            resp, accepted = self._submit(cfg, parsed, body, mode)
            with self._lock:
                self._counters["submit_accepted" if accepted else "submit_rejected"] += 1
            return resp
        if route == "fetch":
            assert arg is not None
            return self._fetch(cfg, arg)
        if route == "list":
            return self._list(cfg, parsed)
        assert arg is not None
        return self._cancel(arg)

    def _fetch(self, cfg: EmulatorConfig, task_id: str) -> _Resp:
        now = time.monotonic()
        with self._lock:
            task = self._tasks.get(task_id)
            obj = self._task_json(task, now, cfg) if task is not None else None
        if obj is not None:
            return _json_resp(200, obj)
        if cfg.flavor == "newapi":
            return _json_resp(400, {"description": "task_no_found", "type": "upstream_error", "code": 4})
        if cfg.flavor == "novicezk" or cfg.unknown_fetch == "null":
            return _Resp(200, b"null")
        if cfg.unknown_fetch == "204":
            return _Resp(204, b"", content_type=None)
        return _Resp(200, b"")

    def _list(self, cfg: EmulatorConfig, parsed: Any) -> _Resp:
        ids = parsed.get("ids") if isinstance(parsed, dict) else None
        if not isinstance(ids, list):
            return _json_resp(400, {"code": 4, "description": "ids must be a JSON array of task ids"})
        if cfg.max_list_ids is not None and len(ids) > cfg.max_list_ids:
            return _json_resp(
                400, {"code": 4, "description": f"too many ids: {len(ids)} > {cfg.max_list_ids}", "type": "bad_request"}
            )
        now = time.monotonic()
        with self._lock:
            tasks = [self._tasks.get(str(i)) for i in ids]
            out = [self._task_json(t, now, cfg) for t in tasks if t is not None]
        return _json_resp(200, out)

    def _cancel(self, task_id: str) -> _Resp:
        now = time.monotonic()
        with self._lock:
            task = self._tasks.get(task_id)
            if task is None:
                return _json_resp(404, {"code": 3, "description": "Task not found", "result": None})
            status = self._timeline(task, now)[0]
            if status in _TERMINAL:
                return _code_resp(4, f"Task already finished ({status})")
            task.forced_status, task.forced_mono, task.forced_reason = "CANCEL", now, None
            if task.notify_hook:
                self._watched.add(task.id)
        return _json_resp(200, {"code": 1, "description": "Cancel success", "result": task_id, "properties": {}})

    @staticmethod
    def _rejection(code: int, prompt: str) -> _Resp:
        if code == -1:
            return _json_resp(200, {"success": False, "code": -1, "message": "Daily limit reached"})
        if code == 30:
            return _code_resp(30, "Too many requests, rate limited", status=429)
        if code == 24:
            return _code_resp(24, "Banned prompt", promptEn=prompt, bannedWord="banned")
        descriptions = {
            3: "No available account instance",
            4: "Validation failed (emulated)",
            5: "Failed to reach upstream",
            9: "Queue full, please try again later",
            23: "Queue full, please try again later",
        }
        extra = {"numberOfQueues": 10} if code == 23 else {}
        return _code_resp(code, descriptions.get(code, f"Emulated submit code {code}"), **extra)

    def _submit(self, cfg: EmulatorConfig, data: Any, body: bytes, mode: str | None) -> tuple[_Resp, bool]:
        """Validate a submit and create the task; return (response, accepted)."""
        if not isinstance(data, dict):
            return _code_resp(4, "Request body must be a JSON object", status=400), False
        if cfg.flavor == "newapi" and data.get("index") is not None and not _is_int(data["index"]):
            message = "json: cannot unmarshal string into Go struct field index of type int"
            return _json_resp(400, {"description": message, "type": "upstream_error", "code": 4}), False
        with self._lock:
            forced = cfg.submit_codes.pop(0) if cfg.submit_codes else None
        prompt = data.get("prompt")
        prompt_text = prompt if isinstance(prompt, str) else ""
        if forced is not None and forced not in (1, 21, 22):
            return self._rejection(forced, prompt_text), False
        state = data.get("state")
        if cfg.flavor == "trueai" and isinstance(state, str) and len(state) > 255:
            return _json_resp(200, {"success": False, "code": -1, "message": "state too long"}), False
        if not prompt_text.strip():
            return _code_resp(4, "prompt is required"), False
        if "[banned]" in prompt_text:
            return self._rejection(24, prompt_text), False
        motion = data.get("motion")
        if motion not in ("low", "high"):
            return _code_resp(4, "motion must be 'low' or 'high'"), False
        action = data.get("action")
        if action not in (None, "", "extend"):
            return _code_resp(4, f"unsupported action {action!r}"), False
        batch = data.get("batchSize", cfg.batch_size)
        if batch is None:
            batch = cfg.batch_size
        if not _is_int(batch) or batch not in (1, 2, 4):
            return _code_resp(4, "batchSize must be 1, 2 or 4"), False
        image = data.get("image")
        image_text = image if isinstance(image, str) else ""
        parent_id: str | None = None
        index: int | None = None
        if action == "extend":
            raw_parent = data.get("taskId")
            if not (isinstance(raw_parent, str) and raw_parent.strip()) and not _is_int(raw_parent):
                return _code_resp(4, "taskId is required for extend"), False
            parent_id = str(raw_parent).strip()
            raw_index = data.get("index")
            if not _is_int(raw_index):
                return _code_resp(4, "index must be an integer 0-3"), False
            index = raw_index
            with self._lock:
                parent = self._tasks.get(parent_id)
                parent_status = self._timeline(parent, time.monotonic())[0] if parent else None
            if parent is None:
                return _code_resp(3, "Parent task not found", status=404), False
            if parent_status != "SUCCESS":
                return _code_resp(4, f"Parent task status is {parent_status}, not SUCCESS"), False
            if not 0 <= index < min(4, parent.batch_size):
                return _code_resp(4, f"index {index} out of range for the parent's clips"), False
        elif not image_text.strip():
            return _code_resp(4, "image is required"), False
        hook = data.get("notifyHook")
        hook = hook if isinstance(hook, str) and hook and _is_loopback_url(hook) else None
        code = forced if forced is not None else 1
        with self._lock:
            if "[fail]" in prompt_text:
                outcome = "failure"
            elif "[cancel]" in prompt_text:
                outcome = "cancel"
            elif "[modal]" in prompt_text:
                outcome = "modal"
            elif "[stuck]" in prompt_text:
                outcome = "stuck"
            elif cfg.fail_rate > 0 and self._rng.random() < cfg.fail_rate:
                outcome = "failure"
            else:
                outcome = "success"
            task = _Task(
                id=self._next_id(),
                kind="extend" if action == "extend" else "new",
                prompt=prompt_text,
                motion=motion,
                image=image_text,
                state=state,
                mode=mode,
                batch_size=batch,
                outcome=outcome,
                submit_code=code,
                notify_hook=hook,
                parent_id=parent_id,
                index=index,
                body=data,
                submit_mono=time.monotonic(),
                submit_wall=time.time(),
                duration=max(0.0, float(cfg.video_duration)),
                urls_after_success=max(0.0, float(cfg.urls_after_success)),
            )
            self._tasks[task.id] = task
            if hook:
                self._watched.add(task.id)
        descriptions = {1: "Submit Success", 21: "Already exists", 22: "Waiting in queue, 1 ahead"}
        properties: dict[str, Any] = {"numberOfQueues": 1} if code == 22 else {}
        sent_code = 1 if cfg.flavor == "newapi" else code
        payload = {"code": sent_code, "description": descriptions[code], "result": task.id, "properties": properties}
        return _json_resp(200, payload), True

    # ----------------------------------------------------------------- media

    def _serve_media(
        self, handler: _Handler, cfg: EmulatorConfig, rec: _Rec, task_id: str, index: int, ext: str
    ) -> None:
        def plain(status: int) -> None:
            rec.status = status
            try:
                phrase = HTTPStatus(status).phrase
            except ValueError:
                phrase = "Error"
            handler.send(_Resp(status, f"{status} {phrase}".encode(), content_type="text/plain; charset=utf-8"))

        forced = cfg.media_status.get(f"{task_id}/{index}", cfg.media_status.get("*"))
        if forced:
            plain(int(forced))
            return
        with self._lock:
            task = self._tasks.get(task_id)
        if task is None or not 0 <= index < task.batch_size:
            plain(404)
            return
        clip = index % media.CLIP_COUNT
        data: bytes | None = None
        if ext == "jpg":
            content_type = "image/jpeg"
            data = media.thumbnail_bytes(clip)
            size = len(data)
        else:
            content_type = cfg.media_content_type
            if cfg.clip_size_bytes is not None:
                size = max(0, int(cfg.clip_size_bytes))
            else:
                data = media.clip_bytes(clip)
                size = len(data)
        start, stop, status = 0, size, 200
        range_header = handler.headers.get("Range")
        match = _RANGE_RE.match(range_header.strip()) if range_header else None
        if match and (match.group(1) or match.group(2)):
            first, last = match.group(1), match.group(2)
            if first:
                start = int(first)
                stop = min(size, int(last) + 1) if last else size
            else:
                start, stop = max(0, size - int(last)), size
            if start >= size or stop <= start:
                rec.status = 416
                handler.send(_Resp(416, b"", content_type=None, headers={"Content-Range": f"bytes */{size}"}))
                return
            status = 206
        length = stop - start
        handler.send_response(status)
        handler.send_header("Content-Type", content_type)
        handler.send_header("Content-Length", str(length))
        handler.send_header("Accept-Ranges", "bytes")
        handler.send_header("Cache-Control", "public, max-age=86400")
        handler.send_header("Access-Control-Allow-Origin", "*")
        handler.send_header("ETag", f'"{task_id}-{index}-{size}"')
        if status == 206:
            handler.send_header("Content-Range", f"bytes {start}-{stop - 1}/{size}")
        handler.end_headers()
        rec.status = status
        if handler.command == "HEAD":
            return
        chunks: Iterable[bytes]
        if data is not None:
            chunks = (data[start:stop],)
        else:
            chunks = media.streamed_clip(size, start=start, stop=stop, index=clip)
        limit = cfg.media_drop_after_bytes
        if limit is not None and limit < length:
            rec.fault = "truncated"
            with self._lock:
                faults = self._counters["faults"]
                faults["truncated"] = faults.get("truncated", 0) + 1
            chunks = self._truncate(chunks, max(0, limit))
            for piece in chunks:
                handler.wfile.write(piece)
            handler.drop()
            return
        for piece in chunks:
            handler.wfile.write(piece)

    @staticmethod
    def _truncate(chunks: Iterable[bytes], limit: int) -> Iterator[bytes]:
        sent = 0
        for piece in chunks:
            if sent >= limit:
                return
            piece = piece[: limit - sent]
            sent += len(piece)
            yield piece

    # ----------------------------------------------------------------- notifyHook

    def _notify_loop(self) -> None:
        while not self._stop_event.wait(0.1):
            try:
                self._notify_tick()
            except Exception:  # pragma: no cover - never let the ticker die
                continue

    def _notify_tick(self) -> None:
        now = time.monotonic()
        cfg = self.config
        due: list[tuple[str, dict[str, Any]]] = []
        with self._lock:
            for task_id in list(self._watched):
                task = self._tasks.get(task_id)
                if task is None or not task.notify_hook:
                    self._watched.discard(task_id)
                    continue
                obj = self._task_json(task, now, cfg)
                ready = self._urls_ready(task, now)
                key = (obj["status"], obj["progress"], ready)
                if key != task.last_notified:
                    task.last_notified = key
                    due.append((task.notify_hook, obj))
                if obj["status"] in ("FAILURE", "CANCEL") or (obj["status"] == "SUCCESS" and ready):
                    self._watched.discard(task_id)
        for url, payload in due:
            self._post(url, payload)

    def _post(self, url: str, payload: dict[str, Any]) -> None:
        """POST ``payload`` to a loopback ``url`` once; no retries, no redirects, no proxies."""
        if not _is_loopback_url(url):
            return
        parts = urlsplit(url)
        conn_cls = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
        target = parts.path or "/"
        if parts.query:
            target += "?" + parts.query
        ok = False
        conn = conn_cls(parts.hostname or "127.0.0.1", parts.port, timeout=2.0)
        try:
            data = json.dumps(payload, ensure_ascii=False).encode("utf-8")
            conn.request("POST", target, body=data, headers={"Content-Type": "application/json"})
            conn.getresponse().read()
            ok = True
        except (OSError, http.client.HTTPException):
            ok = False
        finally:
            conn.close()
        with self._lock:
            self._notifications.append((url, payload))
            self._counters["notify_sent" if ok else "notify_failed"] += 1
