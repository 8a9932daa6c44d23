"""The task routes (internal): fetch one task, list many, cancel one."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from airflow_provider_mjvideo.testing.emulator.config import EmulatorConfig
from airflow_provider_mjvideo.testing.emulator.flavors import flavor_of
from airflow_provider_mjvideo.testing.emulator.httpd import Resp, code_resp, json_resp
from airflow_provider_mjvideo.testing.emulator.tasks import TERMINAL, Task, TaskBook, timeline

#: Builds the public task object (see :func:`.task_json.render`); called with the book's lock held.
Render = Callable[[Task, float], dict[str, Any]]


def fetch(book: TaskBook, cfg: EmulatorConfig, render: Render, task_id: str) -> Resp:
    """Answer ``GET /mj/task/{id}/fetch``."""
    now = time.monotonic()
    with book.lock:
        task = book.tasks.get(task_id)
        obj = render(task, now) if task is not None else None
    if obj is not None:
        return json_resp(200, obj)
    return flavor_of(cfg).unknown_task(cfg)


def list_by_condition(book: TaskBook, cfg: EmulatorConfig, render: Render, parsed: Any) -> Resp:
    """Answer ``POST /mj/task/list-by-condition``: the known tasks among ``ids``, in order, unknown ones left out."""
    ids = parsed.get("ids") if isinstance(parsed, dict) else None
    if not isinstance(ids, list):
        return json_resp(400, {"code": 4, "description": "ids must be a JSON array of task ids"})
    if cfg.max_list_ids is not None and len(ids) > cfg.max_list_ids:
        return json_resp(
            400, {"code": 4, "description": f"too many ids: {len(ids)} > {cfg.max_list_ids}", "type": "bad_request"}
        )
    now = time.monotonic()
    with book.lock:
        tasks = [book.tasks.get(str(i)) for i in ids]
        out = [render(t, now) for t in tasks if t is not None]
    return json_resp(200, out)


def cancel(book: TaskBook, task_id: str) -> Resp:
    """Answer ``POST /mj/task/{id}/cancel`` (on flavours that have the route)."""
    now = time.monotonic()
    with book.lock:
        task = book.tasks.get(task_id)
        if task is None:
            return json_resp(404, {"code": 3, "description": "Task not found", "result": None})
        status = timeline(task, now).status
        if status in TERMINAL:
            return code_resp(4, f"Task already finished ({status})")
        book.force(task_id, "CANCEL", None, now)
    return json_resp(200, {"code": 1, "description": "Cancel success", "result": task_id, "properties": {}})
