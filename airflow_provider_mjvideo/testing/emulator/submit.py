"""``POST /mj/submit/video`` (internal): validation, rejections, and the new task."""

from __future__ import annotations

import time
from typing import Any

from airflow_provider_mjvideo.testing.emulator.config import EmulatorConfig
from airflow_provider_mjvideo.testing.emulator.flavors import Flavor, flavor_of
from airflow_provider_mjvideo.testing.emulator.httpd import Resp, code_resp, is_int, is_loopback_url, json_resp
from airflow_provider_mjvideo.testing.emulator.tasks import Task, TaskBook, timeline

#: Codes that accept a submission (the client takes ``result``).
ACCEPTING_CODES = (1, 21, 22)
_ACCEPT_DESCRIPTIONS = {1: "Submit Success", 21: "Already exists", 22: "Waiting in queue, 1 ahead"}
_REJECT_DESCRIPTIONS = {
    3: "No available account instance",
    4: "Validation failed (emulated)",
    5: "Failed to reach upstream",
    9: "Queue full, please try again later",
    23: "Queue full, please try again later",
}


def rejection(code: int, prompt: str) -> Resp:
    """Return the answer of a refused submission with ``code`` (forced, or a banned ``prompt``)."""
    if code == -1:
        return json_resp(200, {"success": False, "code": -1, "message": "Daily limit reached"})
    if code == 30:
        return code_resp(30, "Too many requests, rate limited", status=429)
    if code == 24:
        return code_resp(24, "Banned prompt", promptEn=prompt, bannedWord="banned")
    extra = {"numberOfQueues": 10} if code == 23 else {}
    return code_resp(code, _REJECT_DESCRIPTIONS.get(code, f"Emulated submit code {code}"), **extra)


def accepted(task_id: str, code: int, flavor: Flavor) -> Resp:
    """Return the answer of an accepted submission of task ``task_id`` with ``code`` (1, 21 or 22)."""
    properties: dict[str, Any] = {"numberOfQueues": 1} if code == 22 else {}
    payload = {
        "code": flavor.sent_code(code),
        "description": _ACCEPT_DESCRIPTIONS[code],
        "result": task_id,
        "properties": properties,
    }
    return json_resp(200, payload)


def loopback_hook(data: dict[str, Any]) -> str | None:
    """Return the body's ``notifyHook`` when it is a loopback URL (the emulator calls nothing else)."""
    hook = data.get("notifyHook")
    return hook if isinstance(hook, str) and hook and is_loopback_url(hook) else None


def submit_video(book: TaskBook, cfg: EmulatorConfig, data: Any, mode: str | None) -> tuple[Resp, bool]:
    """Validate a video submit and create its task.

    Args:
        book: Where the task goes.
        cfg: The live configuration.
        data: The parsed JSON body.
        mode: Speed mode of the route prefix, or None.

    Returns:
        ``(response, accepted)``.
    """
    if not isinstance(data, dict):
        return code_resp(4, "Request body must be a JSON object", status=400), False
    flavor = flavor_of(cfg)
    bind_error = flavor.binding_error(data)
    if bind_error is not None:
        return bind_error, False
    with book.lock:
        forced = cfg.submit_codes.pop(0) if cfg.submit_codes else None
    prompt = data.get("prompt")
    prompt_text = prompt if isinstance(prompt, str) else ""
    if forced is not None and forced not in ACCEPTING_CODES:
        return rejection(forced, prompt_text), False
    state = data.get("state")
    state_error = flavor.state_error(state)
    if state_error is not None:
        return state_error, False
    if not prompt_text.strip():
        return code_resp(4, "prompt is required"), False
    if "[banned]" in prompt_text:
        return rejection(24, prompt_text), False
    motion = data.get("motion")
    if motion not in ("low", "high"):
        return code_resp(4, "motion must be 'low' or 'high'"), False
    action = data.get("action")
    if action not in (None, "", "extend"):
        return code_resp(4, f"unsupported action {action!r}"), False
    batch = data.get("batchSize", cfg.batch_size)
    if batch is None:
        batch = cfg.batch_size
    if not is_int(batch) or batch not in (1, 2, 4):
        return code_resp(4, "batchSize must be 1, 2 or 4"), False
    image = data.get("image")
    image_text = image if isinstance(image, str) else ""
    parent_id: str | None = None
    index: int | None = None
    if action == "extend":
        raw_parent = data.get("taskId")
        if not (isinstance(raw_parent, str) and raw_parent.strip()) and not is_int(raw_parent):
            return code_resp(4, "taskId is required for extend"), False
        parent_id = str(raw_parent).strip()
        raw_index = data.get("index")
        if not is_int(raw_index):
            return code_resp(4, "index must be an integer 0-3"), False
        index = raw_index
        with book.lock:
            parent = book.tasks.get(parent_id)
            parent_status = timeline(parent, time.monotonic()).status if parent else None
        if parent is None:
            return code_resp(3, "Parent task not found", status=404), False
        if parent_status != "SUCCESS":
            return code_resp(4, f"Parent task status is {parent_status}, not SUCCESS"), False
        if not 0 <= index < min(4, parent.batch_size):
            return code_resp(4, f"index {index} out of range for the parent's clips"), False
    elif not image_text.strip():
        return code_resp(4, "image is required"), False
    code = forced if forced is not None else 1
    with book.lock:
        task = Task(
            id=book.next_id(),
            kind="extend" if action == "extend" else "new",
            prompt=prompt_text,
            motion=motion,
            image=image_text,
            state=state,
            mode=mode,
            batch_size=batch,
            outcome=book.outcome(prompt_text, cfg.fail_rate),
            submit_code=code,
            notify_hook=loopback_hook(data),
            parent_id=parent_id,
            index=index,
            body=data,
            submit_mono=time.monotonic(),
            submit_wall=time.time(),
            duration=max(0.0, float(cfg.video_duration)),
            urls_after_success=max(0.0, float(cfg.urls_after_success)),
        )
        book.add(task)
    return accepted(task.id, code, flavor), True
