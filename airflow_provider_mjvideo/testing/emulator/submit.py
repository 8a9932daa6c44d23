"""What every submission route shares (internal): the first checks, the answers, creating the task.

The routes themselves: :mod:`.video` (``/mj/submit/video``), :mod:`.imagine`, :mod:`.actions`
(``/mj/submit/action`` and ``/mj/submit/modal``).
"""

from __future__ import annotations

import time
from typing import Any, NamedTuple

from airflow_provider_mjvideo.testing.emulator.config import EmulatorConfig
from airflow_provider_mjvideo.testing.emulator.flavors import Flavor, flavor_of
from airflow_provider_mjvideo.testing.emulator.httpd import Resp, code_resp, is_int, is_loopback_url, json_resp
from airflow_provider_mjvideo.testing.emulator.tasks import Task, TaskBook

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

#: What a submission route returns: the answer, and whether it accepted the submission.
Outcome = tuple[Resp, bool]


class Admitted(NamedTuple):
    """A submission that passed the checks every route makes first, with what its route needs to answer it."""

    data: dict[str, Any]
    flavor: Flavor
    #: The code forced by ``submit_codes`` (an accepting one), or None.
    forced: int | None
    #: The body's ``prompt`` ("" when absent or not a string).
    prompt: str
    #: Where the task goes.
    book: TaskBook
    #: The live configuration.
    cfg: EmulatorConfig
    #: Speed mode of the route prefix, or None.
    mode: str | None

    def code(self, default: int = 1) -> int:
        """Return the accepting code to answer: the forced one, else ``default``."""
        return self.forced if self.forced is not None else default

    def accept(self, *, duration: float, outcome_from: str, code: int | None = None, **fields: Any) -> Outcome:
        """
        Create and store the submission's task; return the accepting answer ``(response, True)``.

        Args:
            duration: Seconds from submit to SUCCESS.
            outcome_from: The prompt whose markers choose the outcome (see :meth:`TaskBook.outcome`).
            code: The accepting code to answer (default: :meth:`code`).
            fields: The remaining :class:`Task` fields (kind, prompt, motion, image, batch_size, ...).
        """
        code = self.code() if code is None else code
        book, cfg = self.book, self.cfg
        with book.lock:
            task = Task(
                id=book.next_id(),
                state=self.data.get("state"),
                mode=self.mode,
                outcome=book.outcome(outcome_from, cfg.fail_rate),
                submit_code=code,
                notify_hook=_loopback_hook(self.data),
                body=self.data,
                submit_mono=time.monotonic(),
                submit_wall=time.time(),
                duration=max(0.0, float(duration)),
                urls_after_success=max(0.0, float(cfg.urls_after_success)),
                **fields,
            )
            book.add(task)
        return accepted(task.id, code, self.flavor), True


def admit(book: TaskBook, cfg: EmulatorConfig, data: Any, mode: str | None) -> Admitted | Resp:
    """Make the checks every submission route makes first, in the servers' order; return the refusal if any.

    The body must be a JSON object the flavour can bind; a forced code from ``submit_codes`` is consumed
    (a rejecting one refuses); the flavour may refuse the ``state``.
    """
    if not isinstance(data, dict):
        return code_resp(4, "Request body must be a JSON object", status=400)
    flavor = flavor_of(cfg)
    bind_error = flavor.binding_error(data)
    if bind_error is not None:
        return bind_error
    with book.lock:
        forced = cfg.submit_codes.pop(0) if cfg.submit_codes else None
    prompt = data.get("prompt")
    prompt_text = prompt if isinstance(prompt, str) else ""
    if forced is not None and forced not in ACCEPTING_CODES:
        return rejection(forced, prompt_text)
    state_error = flavor.state_error(data.get("state"))
    if state_error is not None:
        return state_error
    return Admitted(data, flavor, forced, prompt_text, book, cfg, mode)


def check_prompt(prompt: str) -> Resp | None:
    """Return the refusal of an empty or banned (``[banned]``) prompt, else None."""
    if not prompt.strip():
        return code_resp(4, "prompt is required")
    if "[banned]" in prompt:
        return rejection(24, prompt)
    return None


def task_id_of(data: dict[str, Any]) -> str | None:
    """Return the body's ``taskId`` (camelCase, as every server reads it) as a string, or None when missing."""
    raw = data.get("taskId")
    if (isinstance(raw, str) and raw.strip()) or is_int(raw):
        return str(raw).strip()
    return None


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


def _loopback_hook(data: dict[str, Any]) -> str | None:
    """Return the body's ``notifyHook`` when it is a loopback URL (the emulator calls nothing else)."""
    hook = data.get("notifyHook")
    return hook if isinstance(hook, str) and hook and is_loopback_url(hook) else None
