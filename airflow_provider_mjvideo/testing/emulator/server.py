"""The :class:`MidjourneyEmulator`: lifecycle, what tests can read and force, and the request pipeline."""

from __future__ import annotations

import collections
import contextlib
import copy
import json
import threading
import time
import traceback
from dataclasses import asdict
from typing import Any
from urllib.parse import urlsplit

from airflow_provider_mjvideo.testing.emulator import cdn, task_routes
from airflow_provider_mjvideo.testing.emulator.actions import submit_action, submit_modal
from airflow_provider_mjvideo.testing.emulator.auth import authorized
from airflow_provider_mjvideo.testing.emulator.config import ROUTES, SUBMISSION_ROUTES, EmulatorConfig
from airflow_provider_mjvideo.testing.emulator.faults import FaultInjector, fault_response
from airflow_provider_mjvideo.testing.emulator.flavors import flavor_of
from airflow_provider_mjvideo.testing.emulator.httpd import (
    Dropped,
    Handler,
    Rec,
    RecordedRequest,
    Resp,
    Server,
    is_loopback_url,
    json_resp,
    not_found,
)
from airflow_provider_mjvideo.testing.emulator.imagine import submit_imagine
from airflow_provider_mjvideo.testing.emulator.notify import Notifier
from airflow_provider_mjvideo.testing.emulator.routing import Route, api_prefix, route
from airflow_provider_mjvideo.testing.emulator.submit import Outcome, admit
from airflow_provider_mjvideo.testing.emulator.task_json import render
from airflow_provider_mjvideo.testing.emulator.tasks import FAIL_REASON, Task, TaskBook
from airflow_provider_mjvideo.testing.emulator.video import submit_video


def _new_counters() -> dict[str, Any]:
    return {
        "requests": 0,
        **dict.fromkeys(ROUTES, 0),
        "submit_accepted": 0,
        "submit_rejected": 0,
        "accepted": dict.fromkeys(SUBMISSION_ROUTES, 0),
        "rejected": dict.fromkeys(SUBMISSION_ROUTES, 0),
        "auth_failed": 0,
        "faults": {},
        "notify_sent": 0,
        "notify_failed": 0,
    }


class MidjourneyEmulator:
    """A real HTTP server on a loopback address emulating midjourney-proxy style video APIs.

    Counters (:attr:`counters`): ``requests`` and one count per route name (:data:`ROUTES`);
    ``submit_accepted`` and ``submit_rejected`` for the video submit route alone; ``accepted`` and
    ``rejected``, each a dict from submission route (``"submit"``, ``"imagine"``, ``"action"``,
    ``"modal"``) to how many submissions it accepted or refused once authenticated (an injected fault,
    an auth failure or a missing route counts in neither); ``auth_failed``; ``faults`` (kind → count,
    with ``"truncated"`` for cut-off downloads); ``notify_sent`` and ``notify_failed``.

    Args:
        config: Behaviour; a default :class:`EmulatorConfig` when None. Kept live as :attr:`config`.
        host: Loopback address to bind.
        port: Port to bind; 0 picks a free one.

    Raises:
        ValueError: ``host`` is not a loopback address.
    """

    def __init__(self, config: EmulatorConfig | None = None, *, host: str = "127.0.0.1", port: int = 0) -> None:
        if not is_loopback_url(f"http://{host if ':' not in host else f'[{host}]'}/"):
            raise ValueError(f"the emulator only binds loopback addresses, not {host!r}")
        self.config: EmulatorConfig = config if config is not None else EmulatorConfig()
        self.host = host
        self._requested_port = port
        self._book = TaskBook(self.config.seed)
        # One lock for tasks, request log, counters and fault queues: requests touch several at once.
        self._lock = self._book.lock
        self._log: collections.deque[Rec] = collections.deque()
        self._counters: dict[str, Any] = _new_counters()
        self._notifications: list[tuple[str, dict[str, Any]]] = []
        self._errors: list[str] = []
        self._faults = FaultInjector(self._lock)
        self._notifier = Notifier(self._book, self._render, self._record_notification)
        self._server: Server | None = None
        self._serve_thread: threading.Thread | None = None
        self._notify_thread: threading.Thread | None = None
        self._stop_event = threading.Event()

    # ----------------------------------------------------------------- lifecycle

    def start(self) -> MidjourneyEmulator:
        """Bind and start serving in background threads; return self.

        A stopped emulator starts again on the port it had, with its tasks, request log and counters: an API
        that went away for a while and came back.
        """
        if self._server is not None:
            return self
        self._stop_event.clear()
        server = Server((self.host, self._requested_port), self._handle)
        self._server = server
        self._requested_port = int(server.server_address[1])
        self._serve_thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="mjvideo-emulator", daemon=True
        )
        self._serve_thread.start()
        self._notify_thread = threading.Thread(
            target=self._notifier.run, args=(self._stop_event,), name="mjvideo-emulator-notify", daemon=True
        )
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
        return self.root_url + api_prefix(self.config)

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
        """A deep copy of the counters (see the class docstring)."""
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
        with self._lock:
            out = {}
            for task_id, task in self._book.tasks.items():
                snap = asdict(task)
                public = self._render(task, now)
                snap.update(status=public["status"], progress=public["progress"], json=public)
                out[task_id] = snap
            return out

    def reset(self) -> None:
        """Forget tasks, the request log, notifications and counters (the config is kept)."""
        with self._lock:
            self._book.clear(self.config.seed)
            self._log.clear()
            self._notifications.clear()
            self._errors.clear()
            self._counters = _new_counters()
            self._faults.reset()

    def complete_task(self, task_id: str) -> None:
        """Force task ``task_id`` to SUCCESS now (URLs follow after ``urls_after_success``)."""
        with self._lock:
            self._book.force(task_id, "SUCCESS", None)

    def fail_task(self, task_id: str, reason: str = FAIL_REASON) -> None:
        """Force task ``task_id`` to FAILURE now with ``failReason`` ``reason``."""
        with self._lock:
            self._book.force(task_id, "FAILURE", reason)

    # ----------------------------------------------------------------- internals shared by the routes

    def _media_root(self) -> str:
        """``scheme://host:port`` written in result URLs (``media_host`` puts them on another origin)."""
        if self.config.media_host:
            return f"http://{self.config.media_host}:{self.port}"
        return self.root_url

    def _render(self, task: Task, now: float) -> dict[str, Any]:
        return render(task, now, self.config, self._media_root())

    def _record_notification(self, url: str, payload: dict[str, Any], ok: bool) -> None:
        with self._lock:
            self._notifications.append((url, payload))
            self._counters["notify_sent" if ok else "notify_failed"] += 1

    def _count_fault(self, kind: str) -> None:
        with self._lock:
            faults = self._counters["faults"]
            faults[kind] = faults.get(kind, 0) + 1

    # ----------------------------------------------------------------- request pipeline

    def _handle(self, handler: Handler) -> None:
        """Log, fault, authenticate and answer one request; an emulator bug becomes an HTTP 500."""
        cfg = self.config
        arrived = time.monotonic()
        body = handler.read_body()
        split = urlsplit(handler.path)
        where = route(handler.command, split.path, cfg)
        parsed: Any = None
        if body and where.name != "media":
            try:
                parsed = json.loads(body)
            except ValueError:
                parsed = None
        rec = Rec(
            method=handler.command,
            path=split.path,
            query=split.query,
            headers={k.lower(): v for k, v in handler.headers.items()},
            body=body if where.name != "media" else b"",
            json=parsed,
            status=0,
            fault=None,
            time=arrived,
            route=where.name,
            mode=where.mode,
        )
        with self._lock:
            self._log.append(rec)
            while len(self._log) > max(1, cfg.max_recorded_requests):
                self._log.popleft()
            self._counters["requests"] += 1
            self._counters[where.name] += 1
        try:
            self._respond(handler, cfg, rec, where, parsed)
        except (Dropped, OSError):
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
                    handler.send(json_resp(500, {"code": 9, "description": f"Emulator error: {exc!r}"}))

    def _respond(self, handler: Handler, cfg: EmulatorConfig, rec: Rec, where: Route, parsed: Any) -> None:
        # Faults come first, before auth, as a proxy or load balancer in front of the server would inject them.
        fault = self._faults.draw(where.name, cfg)
        if fault is not None:
            rec.fault = fault
            self._count_fault(fault)
            if fault == "drop":
                handler.drop()
                raise Dropped
            if fault == "slow":
                time.sleep(max(0.0, cfg.faults.slow_seconds))
            else:
                if where.name != "media" and cfg.response_delay > 0:
                    time.sleep(cfg.response_delay)
                resp = fault_response(fault, cfg)
                rec.status = resp.status
                handler.send(resp)
                return
        if where.media is not None:
            cdn.serve_media(handler, cfg, rec, self._book, where.media, self._count_fault)
            return
        if cfg.response_delay > 0:
            time.sleep(cfg.response_delay)
        resp = self._api(handler, cfg, where, parsed)
        rec.status = resp.status
        handler.send(resp)

    def _api(self, handler: Handler, cfg: EmulatorConfig, where: Route, parsed: Any) -> Resp:
        flavor = flavor_of(cfg)
        name = where.name
        if name == "other":
            return not_found()
        if name == "list" and not cfg.list_by_condition_enabled:
            return not_found()
        if name == "cancel" and not flavor.has_cancel:
            return not_found()
        if name == "submit" and not cfg.video_route:
            return not_found()
        if not authorized(handler.headers, cfg):
            with self._lock:
                self._counters["auth_failed"] += 1
            return flavor.unauthorized()
        if name in SUBMISSION_ROUTES:
            resp, accepted = self._submission(cfg, where, parsed)
            with self._lock:
                self._counters["accepted" if accepted else "rejected"][name] += 1
                if name == "submit":
                    self._counters["submit_accepted" if accepted else "submit_rejected"] += 1
            return resp
        if name == "fetch":
            assert where.task_id is not None
            return task_routes.fetch(self._book, cfg, self._render, where.task_id)
        if name == "list":
            return task_routes.list_by_condition(self._book, cfg, self._render, parsed)
        assert where.task_id is not None
        return task_routes.cancel(self._book, where.task_id)

    def _submission(self, cfg: EmulatorConfig, where: Route, parsed: Any) -> Outcome:
        # The checks every submission route makes first (body, forced codes, state), then the route's own.
        sub = admit(self._book, cfg, parsed, where.mode)
        if isinstance(sub, Resp):
            return sub, False
        if where.name == "submit":
            return submit_video(sub)
        if where.name == "imagine":
            return submit_imagine(sub)
        if where.name == "action":
            return submit_action(sub, self._media_root())
        return submit_modal(sub)
