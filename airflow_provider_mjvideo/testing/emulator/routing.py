"""Routing (internal): which route a method and path name, with the speed mode and ids they carry."""

from __future__ import annotations

import re
from typing import NamedTuple

from airflow_provider_mjvideo.testing.emulator.cdn import MEDIA_RE
from airflow_provider_mjvideo.testing.emulator.config import SPEED_PREFIXES, EmulatorConfig

_FETCH_RE = re.compile(r"^/mj/task/([^/]+)/fetch$")
_CANCEL_RE = re.compile(r"^/mj/task/([^/]+)/cancel$")
#: ``POST`` routes without a path parameter.
_POST_ROUTES = {
    "/mj/submit/video": "submit",
    "/mj/submit/imagine": "imagine",
    "/mj/submit/action": "action",
    "/mj/submit/modal": "modal",
    "/mj/task/list-by-condition": "list",
}


class Route(NamedTuple):
    """What a request asks for."""

    #: Route name, one of :data:`ROUTES`.
    name: str
    #: Speed mode from a ``/mj-fast``-style prefix, or None.
    mode: str | None = None
    #: Task id in the path (fetch, cancel), or None.
    task_id: str | None = None
    #: ``(task id, number or "grid", extension)`` of a fake-CDN path, or None.
    media: tuple[str, str, str] | None = None


def api_prefix(cfg: EmulatorConfig) -> str:
    """Return ``cfg.path_prefix`` as ``""`` or ``"/segments"`` (no trailing slash)."""
    prefix = cfg.path_prefix.strip("/")
    return f"/{prefix}" if prefix else ""


def route(method: str, path: str, cfg: EmulatorConfig) -> Route:
    """Return the route of a request (``"other"`` when nothing matches).

    Media paths match with or without ``path_prefix``; API paths only under it, optionally after a
    speed prefix (``/mj-fast/mj/...``).
    """
    prefix = api_prefix(cfg)
    if len(path) > 1:
        path = path.rstrip("/")
    for candidate in (path, path[len(prefix) :] if prefix and path.startswith(prefix + "/") else None):
        match = MEDIA_RE.match(candidate) if candidate else None
        if match and method in ("GET", "HEAD"):
            return Route("media", media=(match.group(1), match.group(2), match.group(3)))
    if prefix:
        if not path.startswith(prefix + "/"):
            return Route("other")
        path = path[len(prefix) :]
    mode = None
    head, _, rest = path.lstrip("/").partition("/")
    if head in SPEED_PREFIXES:
        mode = SPEED_PREFIXES[head]
        path = "/" + rest
    if method == "POST" and path in _POST_ROUTES:
        return Route(_POST_ROUTES[path], mode)
    match = _FETCH_RE.match(path)
    if match and method == "GET":
        return Route("fetch", mode, match.group(1))
    match = _CANCEL_RE.match(path)
    if match and method == "POST":
        return Route("cancel", mode, match.group(1))
    return Route("other", mode)
