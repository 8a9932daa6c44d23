"""``POST /mj/submit/video`` (internal): a new video from a first frame, or an extend of an earlier clip."""

from __future__ import annotations

import time

from airflow_provider_mjvideo.testing.emulator.httpd import Resp, code_resp, is_int
from airflow_provider_mjvideo.testing.emulator.submit import (
    Admitted,
    Outcome,
    check_prompt,
    task_id_of,
)
from airflow_provider_mjvideo.testing.emulator.tasks import TaskBook, timeline


def submit_video(sub: Admitted) -> Outcome:
    """Validate a video submit and create its task.

    ``sub`` is the request as every submission route admitted it (:func:`submit.admit`); the answer is
    ``(response, accepted)`` like every route's.
    """
    book, cfg = sub.book, sub.cfg
    body = sub.data
    refusal = check_prompt(sub.prompt)
    if refusal is not None:
        return refusal, False
    motion = body.get("motion")
    if motion not in ("low", "high"):
        return code_resp(4, "motion must be 'low' or 'high'"), False
    action = body.get("action")
    if action not in (None, "", "extend"):
        return code_resp(4, f"unsupported action {action!r}"), False
    batch = body.get("batchSize", cfg.batch_size)
    if batch is None:
        batch = cfg.batch_size
    if not is_int(batch) or batch not in (1, 2, 4):
        return code_resp(4, "batchSize must be 1, 2 or 4"), False
    image = body.get("image")
    image_text = image if isinstance(image, str) else ""
    parent_id: str | None = None
    index: int | None = None
    if action == "extend":
        parent_id = task_id_of(body)
        if parent_id is None:
            return code_resp(4, "taskId is required for extend"), False
        raw_index = body.get("index")
        if not is_int(raw_index):
            return code_resp(4, "index must be an integer 0-3"), False
        index = raw_index
        refusal = _extend_refusal(book, parent_id, index)
        if refusal is not None:
            return refusal, False
    elif not image_text.strip():
        return code_resp(4, "image is required"), False
    return sub.accept(
        duration=cfg.video_duration,
        outcome_from=sub.prompt,
        kind="extend" if action == "extend" else "new",
        prompt=sub.prompt,
        motion=motion,
        image=image_text,
        batch_size=batch,
        parent_id=parent_id,
        index=index,
    )


def _extend_refusal(book: TaskBook, parent_id: str, index: int) -> Resp | None:
    """Return why clip ``index`` of task ``parent_id`` cannot be extended, or None when it can."""
    with book.lock:
        parent = book.tasks.get(parent_id)
        parent_status = timeline(parent, time.monotonic()).status if parent else None
    # Every flavour answers what the upstream trueai answers: gateways pass video extends through unchecked.
    if parent is None:
        return code_resp(3, "Parent task not found", status=404)
    if parent_status != "SUCCESS":
        return code_resp(4, f"Parent task status is {parent_status}, not SUCCESS")
    if not 0 <= index < min(4, parent.batch_size):
        return code_resp(4, f"index {index} out of range for the parent's clips")
    return None
