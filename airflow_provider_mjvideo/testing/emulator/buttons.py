"""Buttons (internal): which buttons a finished task carries, their ``customId`` format, and what pressing one does.

Custom ids follow Midjourney's ``MJ::JOB::<verb>::<number>::<jobId>[::SOLO]``; button numbers are 1-based.
"""

from __future__ import annotations

import uuid
from typing import Any, NamedTuple

from airflow_provider_mjvideo.testing.emulator.tasks import Task

#: Seed of the stable, UUID-shaped Midjourney job id of each task.
_JOB_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "mjvideo-emulator/job")


class Press(NamedTuple):
    """What pressing one button makes."""

    #: ``action`` of the new task: UPSCALE, VARIATION, REROLL or VIDEO.
    action: str
    #: Whether the button opens the remix modal when remix is on.
    remixable: bool
    #: For animate buttons, the video's motion (``"high"``/``"low"``); None otherwise.
    motion: str | None = None


#: Verbs the emulator knows how to press.
PRESSES = {
    "upsample": Press("UPSCALE", remixable=False),
    "variation": Press("VARIATION", remixable=True),
    "high_variation": Press("VARIATION", remixable=True),
    "low_variation": Press("VARIATION", remixable=True),
    "reroll": Press("REROLL", remixable=True),
    "animate_high": Press("VIDEO", remixable=True, motion="high"),
    "animate_low": Press("VIDEO", remixable=True, motion="low"),
}


def job_id(task: Task) -> str:
    """Return the Midjourney job id (a UUID, stable per task) written in ``task``'s buttons."""
    return str(uuid.uuid5(_JOB_NAMESPACE, task.id))


def custom_id(verb: str, number: int, task: Task, *, solo: bool = False) -> str:
    """Return the ``customId`` of button ``verb``/``number`` on ``task``."""
    return f"MJ::JOB::{verb}::{number}::{job_id(task)}" + ("::SOLO" if solo else "")


def verb_of(customid: str) -> str | None:
    """Return the verb of a ``MJ::JOB::<verb>::...`` custom id, or None when it has another shape."""
    parts = customid.split("::")
    return parts[2] if len(parts) >= 5 and parts[:2] == ["MJ", "JOB"] else None


def number_of(customid: str) -> int:
    """Return the 1-based button number of a custom id that :func:`verb_of` accepts."""
    return int(customid.split("::")[3])


def _button(customid: str, label: str, emoji: str = "") -> dict[str, Any]:
    return {"customId": customid, "emoji": emoji, "label": label, "style": 2, "type": 2}


def buttons(task: Task, *, video: bool) -> list[dict[str, Any]]:
    """Return the buttons of ``task`` once it is finished (its result URLs published).

    Args:
        task: The task.
        video: Whether the server has video enabled (upscales then carry Animate buttons).
    """
    if task.kind != "image":
        return [
            {"customId": f"MJ::JOB::video_extend::{i + 1}::{task.id}", "label": f"Extend {i + 1}", "type": 2}
            for i in range(task.batch_size)
        ]
    if len(task.image_colours) == 1:
        out = [
            _button(custom_id("high_variation", 1, task, solo=True), "Vary (Strong)", "🪄"),
            _button(custom_id("low_variation", 1, task, solo=True), "Vary (Subtle)", "🪄"),
        ]
        if video:
            out += [
                _button(custom_id("animate_high", 1, task, solo=True), "Animate (High motion)"),
                _button(custom_id("animate_low", 1, task, solo=True), "Animate (Low motion)"),
            ]
        return out
    grid = [_button(custom_id("upsample", n, task), f"U{n}") for n in range(1, 5)]
    grid += [_button(custom_id("variation", n, task), f"V{n}") for n in range(1, 5)]
    grid.append(_button(custom_id("reroll", 0, task, solo=True), "", "🔄"))
    return grid
