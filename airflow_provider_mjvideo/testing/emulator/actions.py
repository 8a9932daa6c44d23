"""``POST /mj/submit/action`` and ``POST /mj/submit/modal`` (internal): pressing a button, confirming a remix.

An action names a finished task (``taskId``) and one of its buttons (``customId``): an upscale (U1-U4)
makes an UPSCALE task with one picture, a variation or reroll a new grid, an Animate button on an upscale
a VIDEO task whose first frame is the upscale's picture. With ``remix`` on, variation, reroll and animate
open the remix modal: code 21, the task waits in MODAL until ``/mj/submit/modal`` confirms it.
"""

from __future__ import annotations

import time
from typing import Any

from airflow_provider_mjvideo.testing.emulator.buttons import PRESSES, buttons, number_of, verb_of
from airflow_provider_mjvideo.testing.emulator.config import EmulatorConfig
from airflow_provider_mjvideo.testing.emulator.httpd import code_resp
from airflow_provider_mjvideo.testing.emulator.imagine import GRID_COLOURS, image_duration
from airflow_provider_mjvideo.testing.emulator.submit import (
    Admitted,
    Outcome,
    accepted,
    rejection,
    task_id_of,
)
from airflow_provider_mjvideo.testing.emulator.task_json import image_urls
from airflow_provider_mjvideo.testing.emulator.tasks import Task, TaskBook, timeline


def submit_action(sub: Admitted, media_root: str) -> Outcome:
    """Validate a button press and create the task it makes.

    Args:
        sub: The request as every submission route admitted it (its body is ``sub.data``).
        media_root: ``scheme://host:port`` of the fake CDN (an animated video's first frame is there).

    Returns:
        ``(response, accepted)``.
    """
    book, cfg = sub.book, sub.cfg
    parent_id = task_id_of(sub.data)
    if parent_id is None:
        return code_resp(4, "taskId is required"), False
    customid = sub.data.get("customId")
    if not isinstance(customid, str) or not customid.strip():
        return code_resp(4, "customId is required"), False
    refusal = sub.flavor.refuse_button(customid)
    if refusal is not None:
        return refusal, False
    with book.lock:
        parent = book.tasks.get(parent_id)
        status = timeline(parent, time.monotonic()).status if parent is not None else ""
    if parent is None:
        return sub.flavor.task_missing(), False
    if status != "SUCCESS":
        return sub.flavor.parent_not_success(status), False
    if customid not in {button["customId"] for button in buttons(parent, video=cfg.video_route)}:
        return code_resp(4, f"customId {customid!r} is not a button of task {parent_id}"), False
    press = PRESSES.get(verb_of(customid) or "")
    if press is None:
        return code_resp(4, f"Unsupported action: {customid}"), False
    waits = cfg.remix and press.remixable
    code = sub.code(21 if waits else 1)
    made = dict(parent_id=parent_id, button=customid, modal_pending=waits, index=None, bot_type=parent.bot_type)
    if press.action == "VIDEO":
        first_frame = image_urls(parent, media_root)[0]
        fields: dict[str, Any] = dict(kind="new", motion=press.motion, image=first_frame, batch_size=cfg.batch_size)
        duration = cfg.video_duration
    else:
        colours = [parent.image_colours[number_of(customid) - 1]] if press.action == "UPSCALE" else GRID_COLOURS
        fields = dict(kind="image", motion="", image="", batch_size=0, image_colours=list(colours))
        duration = image_duration(cfg)
    # Markers in the parent's prompt already chose the parent's outcome; its children just succeed (or fail_rate).
    return sub.accept(
        code=code,
        duration=duration,
        outcome_from="",
        action=press.action,
        prompt=parent.prompt,
        **made,
        **fields,
    )


def submit_modal(sub: Admitted) -> Outcome:
    """Confirm the remix modal of a MODAL task, which then runs its timeline from now.

    Args:
        sub: The admitted request; its body holds ``taskId``, ``prompt`` (the remixed prompt; its markers
            choose the outcome), ``maskBase64``.

    Returns:
        ``(response, accepted)``.
    """
    book, cfg = sub.book, sub.cfg
    task_id = task_id_of(sub.data)
    if task_id is None:
        return code_resp(4, "taskId is required"), False
    if "[banned]" in sub.prompt:
        return rejection(24, sub.prompt), False
    with book.lock:
        task = book.tasks.get(task_id)
        if task is None:
            return sub.flavor.task_missing(), False
        now = time.monotonic()
        status = timeline(task, now).status
        if status != "MODAL":
            return code_resp(4, f"Task status is {status}, not MODAL"), False
        _confirm(book, cfg, task, sub, now)
    return accepted(task_id, sub.code(), sub.flavor), True


def _confirm(book: TaskBook, cfg: EmulatorConfig, task: Task, sub: Admitted, now: float) -> None:
    """Let ``task`` leave MODAL: its timeline restarts now (call with the book's lock held)."""
    task.modal_pending = False
    task.modal_prompt = sub.prompt
    if sub.prompt.strip():
        task.prompt = sub.prompt
    task.outcome = book.outcome(sub.prompt, cfg.fail_rate)
    task.clock_mono = now
    if task.notify_hook:
        book.watched.add(task.id)
