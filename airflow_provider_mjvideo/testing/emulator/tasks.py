"""Emulated tasks (internal): their state, the book that holds them, and the timeline every task follows."""

from __future__ import annotations

import random
import threading
import time
from dataclasses import dataclass, field
from typing import Any, NamedTuple

FAIL_REASON = "Emulated failure"
TERMINAL = ("SUCCESS", "FAILURE", "CANCEL")

#: Prompt markers that choose a task's outcome, checked in this order.
_OUTCOME_MARKERS = (("[fail]", "failure"), ("[cancel]", "cancel"), ("[modal]", "modal"), ("[stuck]", "stuck"))


@dataclass
class Task:
    """Internal state of one emulated task.

    ``kind`` is ``"new"`` or ``"extend"`` for videos, ``"image"`` for the image pipeline (whose tasks
    have ``batch_size`` 0 and one entry of ``image_colours`` per picture: 4 for a grid, 1 for an upscale).
    """

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
    #: Public ``action``: VIDEO (extends get ``extend_action_name``), IMAGINE, UPSCALE, VARIATION, REROLL.
    action: str = "VIDEO"
    #: ``customId`` of the button pressed on ``parent_id`` to make this task, if any.
    button: str | None = None
    #: Image prompts received (imagine ``base64Array``), each ``{"mime": ..., "data": bytes}``.
    image_prompts: list[dict[str, Any]] = field(default_factory=list)
    bot_type: str = "MID_JOURNEY"
    #: Colour index (see ``media.PALETTE``) of each picture of an image task.
    image_colours: list[int] = field(default_factory=list)
    #: Waiting in MODAL for ``POST /mj/submit/modal`` (remix); the timeline does not move meanwhile.
    modal_pending: bool = False
    #: The prompt a modal confirm sent.
    modal_prompt: str | None = None
    #: When the timeline starts, if not at submit (a modal confirm restarts it).
    clock_mono: float | None = None
    forced_status: str | None = None
    forced_mono: float | None = None
    forced_reason: str | None = None
    last_notified: tuple[Any, ...] | None = None


class Moment(NamedTuple):
    """Where a task stands at one instant (times are ``time.monotonic()`` values)."""

    status: str
    progress: str
    start: float | None
    finish: float | None
    fail_reason: str | None


def timeline(task: Task, now: float) -> Moment:
    """Return where ``task`` stands at ``now``.

    SUBMITTED for the first 10 % of its duration, then IN_PROGRESS with a rising progress, SUCCESS at the
    full duration; ``failure``/``cancel`` outcomes end half-way, ``modal`` stays MODAL and ``stuck`` stays
    IN_PROGRESS. A forced status (:meth:`TaskBook.force`) wins from the moment it was forced. A task
    waiting for a modal confirm is MODAL until then; its timeline starts at the confirm (``clock_mono``).
    """
    duration = max(task.duration, 1e-6)
    origin = task.submit_mono if task.clock_mono is None else task.clock_mono
    start = origin + 0.1 * duration
    if task.forced_status is not None and task.forced_mono is not None and task.forced_mono <= now:
        forced_at = task.forced_mono
        progress = "100%" if task.forced_status == "SUCCESS" else ""
        return Moment(task.forced_status, progress, min(start, forced_at), forced_at, task.forced_reason)
    if task.modal_pending:
        return Moment("MODAL", "0%", None, None, None)
    elapsed = now - origin
    if task.outcome in ("failure", "cancel") and elapsed >= 0.5 * duration:
        finish = origin + 0.5 * duration
        if task.outcome == "failure":
            return Moment("FAILURE", "", start, finish, FAIL_REASON)
        return Moment("CANCEL", "", start, finish, None)
    if task.outcome == "success" and elapsed >= duration:
        return Moment("SUCCESS", "100%", start, origin + duration, None)
    if elapsed < 0.1 * duration:
        return Moment("SUBMITTED", "0%", None, None, None)
    if task.outcome == "modal":
        return Moment("MODAL", "0%", start, None, None)
    pct = min(99, max(0, int(100 * (elapsed - 0.1 * duration) / (0.9 * duration))))
    return Moment("IN_PROGRESS", f"{pct}%", start, None, None)


def urls_ready(task: Task, now: float) -> bool:
    """Return True when ``task`` is SUCCESS and its result URLs are published."""
    moment = timeline(task, now)
    return moment.status == "SUCCESS" and moment.finish is not None and now - moment.finish >= task.urls_after_success


class TaskBook:
    """Every task of one emulator, the tasks whose notifyHook is due, and the lock that guards them.

    The emulator guards its request log and counters with the same :attr:`lock`.

    Args:
        seed: Seed of the outcome random generator (``fail_rate`` draws).
    """

    def __init__(self, seed: int) -> None:
        self.lock = threading.Lock()
        self.tasks: dict[str, Task] = {}
        self.watched: set[str] = set()
        self._last_id = 0
        self._rng = random.Random(seed)

    def clear(self, seed: int) -> None:
        """Forget every task and re-seed the outcome generator (call with :attr:`lock` held)."""
        self.tasks.clear()
        self.watched.clear()
        self._rng = random.Random(seed)

    def next_id(self) -> str:
        """Return a new task id (call with :attr:`lock` held)."""
        # Odd 17-digit ids above 2**53: a client that parses them as floats loses the last digit.
        candidate = int(time.time() * 1000) * 10_000 + 1
        self._last_id = candidate if candidate > self._last_id else self._last_id + 2
        return str(self._last_id)

    def outcome(self, prompt: str, fail_rate: float) -> str:
        """Return how a new task with ``prompt`` ends: a marker's outcome, a ``fail_rate`` failure or success.

        Call with :attr:`lock` held (the generator is shared).
        """
        for marker, outcome in _OUTCOME_MARKERS:
            if marker in prompt:
                return outcome
        if fail_rate > 0 and self._rng.random() < fail_rate:
            return "failure"
        return "success"

    def add(self, task: Task) -> None:
        """Store a new task (call with :attr:`lock` held); its notifyHook, if any, starts being served."""
        self.tasks[task.id] = task
        if task.notify_hook:
            self.watched.add(task.id)

    def force(self, task_id: str, status: str, reason: str | None, now: float | None = None) -> None:
        """Force task ``task_id`` to ``status`` from ``now`` on (call with :attr:`lock` held).

        Raises:
            KeyError: No task has that id.
        """
        task = self.tasks.get(str(task_id))
        if task is None:
            raise KeyError(f"unknown task id {task_id!r}")
        task.forced_status = status
        task.forced_mono = time.monotonic() if now is None else now
        task.forced_reason = reason
        if task.notify_hook:
            self.watched.add(task.id)
