"""Fault injection (internal): which request gets which fault, and what an injected fault answers."""

from __future__ import annotations

import random
import threading
from http import HTTPStatus

from airflow_provider_mjvideo.testing.emulator.config import FAULT_KINDS, SUBMISSION_ROUTES, EmulatorConfig
from airflow_provider_mjvideo.testing.emulator.httpd import Resp, json_resp

#: Fault group of each route name: the rates of ``FaultConfig.<group>`` apply, and a ``fail_next`` target
#: may name the group. Routes outside the map (``"other"``) never get a fault.
ROUTE_GROUP = {
    **dict.fromkeys(SUBMISSION_ROUTES, "submit"),
    **{"fetch": "fetch", "list": "fetch", "cancel": "fetch", "media": "media"},
}

_HTML_ERROR = (
    "<html>\r\n<head><title>{code} {phrase}</title></head>\r\n<body>\r\n"
    "<center><h1>{code} {phrase}</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n"
)


class FaultInjector:
    """Draws the fault of each request: the deterministic ``fail_next`` queues first, then seeded rates.

    Args:
        lock: The lock guarding the config's ``fail_next`` queues and this object's generator.
    """

    def __init__(self, lock: threading.Lock) -> None:
        self._lock = lock
        self._rng = random.Random(0)
        self._key: tuple[int, int] | None = None

    def reset(self) -> None:
        """Re-seed from the config on the next draw (call with the lock held)."""
        self._key = None

    def draw(self, route: str, cfg: EmulatorConfig) -> str | None:
        """Return the fault kind injected into a request of ``route``, or None."""
        group = ROUTE_GROUP.get(route)
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
            # A new FaultConfig object or seed restarts the sequence, so a test's rates are reproducible.
            key = (id(faults), faults.seed)
            if key != self._key:
                self._rng = random.Random(faults.seed)
                self._key = key
            draw = self._rng.random()
        total = 0.0
        for kind in FAULT_KINDS:
            total += max(0.0, float(rates.get(kind, 0.0)))
            if draw < total:
                return kind
        return None


def fault_response(kind: str, cfg: EmulatorConfig) -> Resp:
    """Return the answer of an injected fault that answers (all but ``slow`` and ``drop``)."""
    if kind == "500":
        return json_resp(500, {"code": 9, "description": "Internal error"})
    if kind in ("502", "503", "504"):
        code = int(kind)
        html = _HTML_ERROR.format(code=code, phrase=HTTPStatus(code).phrase)
        return Resp(code, html.encode(), content_type="text/html; charset=utf-8")
    if kind == "429":
        retry = cfg.faults.retry_after
        retry_text = str(int(retry)) if float(retry).is_integer() else f"{retry:g}"
        return json_resp(429, {"code": 30, "description": "Too many requests"}, {"Retry-After": retry_text})
    if kind == "malformed":
        return Resp(200, b'{"code": 1, "status": "IN_PROGRESS", "progress": "4')
    raise ValueError(f"unknown fault kind {kind!r}")
