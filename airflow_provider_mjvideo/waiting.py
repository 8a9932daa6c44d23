"""
What a task's status means for someone waiting on it: the one place that decides.

The hook's ``wait_for_task``, the sensor's ``poke`` and the trigger take one poll step each time
(:meth:`WaitTracker.poll` / :meth:`WaitTracker.apoll`: fetch, decide, log a change) and act on the
:class:`WaitDecision`; the shared poller's observations go through :meth:`WaitTracker.record`, the same
decision and log. Operators and sensors turn a finished decision (or a trigger event carrying one) into a
result or an error with :func:`result_or_raise`.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from enum import Enum
from typing import TYPE_CHECKING, Any, Final

from airflow_provider_mjvideo.exceptions import (
    MidjourneyError,
    MidjourneyNotFoundError,
    MidjourneyTaskFailedError,
    MidjourneyWaitTimeoutError,
    error_from_dict,
)
from airflow_provider_mjvideo.models import MidjourneyTask, TaskStatus

if TYPE_CHECKING:
    from airflow_provider_mjvideo.retrying import TaskLogger

#: What one poll saw: the task, ``None`` (the server does not know the id), or the error the poll ended with.
Observation = MidjourneyTask | None | MidjourneyError

#: How long an id may be unknown to the server right after submission before that is an error.
DEFAULT_NOT_FOUND_GRACE: Final = 60.0
#: How long a task may be SUCCESS without its result's URL (clips, or a picture) before that is an error.
DEFAULT_MISSING_URLS_GRACE: Final = 60.0


class WaitOutcome(str, Enum):
    """How a wait ended (or that it has not): also the ``status`` of trigger events."""

    PENDING = "pending"
    SUCCESS = "success"
    FAILURE = "failure"
    CANCEL = "cancel"
    MODAL = "modal"
    TIMEOUT = "timeout"
    ERROR = "error"


#: The outcome of a wait that ends on a failed status (every status with ``is_failure``).
_FAILURE_OUTCOMES: Final = {
    TaskStatus.FAILURE: WaitOutcome.FAILURE,
    TaskStatus.CANCEL: WaitOutcome.CANCEL,
    TaskStatus.MODAL: WaitOutcome.MODAL,
}


@dataclass(frozen=True)
class WaitDecision:
    """
    The verdict on one observation of a task.

    :param outcome: pending, or how the wait ended.
    :param message: a sentence for logs and errors.
    :param task: the task as last seen, if it was seen.
    :param progress_changed: the status or progress differs from the previous observation (log it).
    :param error: the permanent error that ended the wait, if one did (its type is kept for the task).
    """

    outcome: WaitOutcome
    message: str
    task: MidjourneyTask | None = None
    progress_changed: bool = False
    error: MidjourneyError | None = None

    @property
    def done(self) -> bool:
        """Whether the wait is over."""
        return self.outcome is not WaitOutcome.PENDING

    def to_event(self, mj_task_id: str) -> dict[str, Any]:
        """
        The JSON-only trigger event payload for a finished wait.

        ``error`` is the ending error as :meth:`MidjourneyError.to_dict` (its type and fields), so the
        receiver rebuilds it exactly; ``error_type`` repeats its class name for older readers.
        """
        return {
            "status": self.outcome.value,
            "mj_task_id": mj_task_id,
            "message": self.message,
            "task": self.task.to_summary() if self.task else None,
            "error_type": type(self.error).__name__ if self.error is not None else None,
            "error": self.error.to_dict() if self.error is not None else None,
        }

    def log(self, logger: TaskLogger, mj_task_id: str) -> None:
        """Log what is worth a line: the end of the wait, a change of status or progress, an unknown id."""
        if self.done:
            logger.info("%s", self.message)
        elif self.progress_changed or self.task is None:
            logger.info("Midjourney task %s: %s", mj_task_id, self.message)


@dataclass
class WaitTracker:
    """
    Remembers one wait across polls and decides each observation.

    :param mj_task_id: the task waited on.
    :param started_at: when the wait (or the submission) began, epoch seconds.
    :param deadline: epoch seconds after which a still-pending task is a timeout; ``None`` waits forever.
    :param not_found_grace: seconds an unknown id is tolerated after ``started_at``.
    :param missing_urls_grace: seconds a SUCCESS without its result's URL is tolerated.
    :param expect: what the task's success must carry: ``"video"`` (its clips' URLs), ``"image"`` (its picture)
        or ``"auto"`` (what its :attr:`~airflow_provider_mjvideo.models.MidjourneyTask.kind` says).
    """

    mj_task_id: str
    started_at: float = field(default_factory=time.time)
    deadline: float | None = None
    not_found_grace: float = DEFAULT_NOT_FOUND_GRACE
    missing_urls_grace: float = DEFAULT_MISSING_URLS_GRACE
    expect: str = "auto"
    #: The task as the last poll that saw it reported it (``None`` until one did).
    last_task: MidjourneyTask | None = field(default=None, init=False)
    _success_without_urls_since: float | None = field(default=None, init=False)
    _last_seen: tuple[str, int] | None = field(default=None, init=False)
    _unknown_statuses: set[str] = field(default_factory=set, init=False)

    def observe(self, task: MidjourneyTask | None, now: float | None = None) -> WaitDecision:
        """
        Decide what one poll's answer means.

        :param task: the task as fetched, or ``None`` when the server did not know the id.
        :param now: epoch seconds (defaults to the current time).
        """
        now = time.time() if now is None else now
        if task is not None:
            self.last_task = task
        decision = self._decide(task, now)
        if not decision.done and self.deadline is not None and now >= self.deadline:
            return WaitDecision(
                WaitOutcome.TIMEOUT,
                f"Timed out waiting for Midjourney task {self.mj_task_id} ({decision.message})",
                task,
            )
        return decision

    def observe_error(self, error: MidjourneyError, now: float | None = None) -> WaitDecision:
        """
        Decide what a failed poll means: transient errors keep the wait going, permanent ones end it.

        :param error: what the poll raised after the hook's own retries.
        :param now: epoch seconds (defaults to the current time).
        """
        from airflow_provider_mjvideo.exceptions import MidjourneyPermanentError

        now = time.time() if now is None else now
        if isinstance(error, MidjourneyPermanentError):
            return WaitDecision(
                WaitOutcome.ERROR, f"Polling Midjourney task {self.mj_task_id} failed: {error}", error=error
            )
        if self.deadline is not None and now >= self.deadline:
            return WaitDecision(
                WaitOutcome.TIMEOUT,
                f"Timed out waiting for Midjourney task {self.mj_task_id} (last poll failed: {error})",
            )
        return WaitDecision(WaitOutcome.PENDING, f"poll failed, will retry: {error}")

    def record(self, observation: Observation, logger: TaskLogger, now: float | None = None) -> WaitDecision:
        """
        Decide one observation (a task, ``None`` for an unknown id, or a failed poll's error) and log it.

        :param observation: what the poll saw.
        :param logger: where :meth:`WaitDecision.log` writes.
        :param now: epoch seconds (defaults to the current time).
        """
        if isinstance(observation, MidjourneyError):
            decision = self.observe_error(observation, now)
        else:
            decision = self.observe(observation, now)
        decision.log(logger, self.mj_task_id)
        return decision

    def poll(self, fetch: Callable[[], MidjourneyTask | None], logger: TaskLogger) -> WaitDecision:
        """
        One poll step: fetch the task, decide, log a change; a fetch that raises a provider error is observed as one.

        :param fetch: returns the task, or ``None`` when the server does not know the id.
        :param logger: where to log.
        """
        observation: Observation
        try:
            observation = fetch()
        except MidjourneyError as err:
            observation = err
        return self.record(observation, logger)

    async def apoll(self, fetch: Callable[[], Awaitable[MidjourneyTask | None]], logger: TaskLogger) -> WaitDecision:
        """The async :meth:`poll`: ``fetch`` is a coroutine function."""
        observation: Observation
        try:
            observation = await fetch()
        except MidjourneyError as err:
            observation = err
        return self.record(observation, logger)

    def _decide(self, task: MidjourneyTask | None, now: float) -> WaitDecision:
        if task is None:
            unknown_for = now - self.started_at
            if unknown_for < self.not_found_grace:
                return WaitDecision(
                    WaitOutcome.PENDING,
                    f"the server does not know task {self.mj_task_id} yet ({unknown_for:.0f} s after submit)",
                )
            message = (
                f"Midjourney task {self.mj_task_id} not found on the server {unknown_for:.0f} s after the wait started"
            )
            return WaitDecision(WaitOutcome.ERROR, message, error=MidjourneyNotFoundError(message))

        seen = (task.raw_status, task.progress)
        changed = seen != self._last_seen
        self._last_seen = seen

        if task.status is TaskStatus.SUCCESS:
            pictures = (self.expect == "auto" and task.kind == "image") or self.expect == "image"
            if pictures and task.image_url:
                return WaitDecision(
                    WaitOutcome.SUCCESS,
                    f"Midjourney task {task.id} succeeded with its picture ({task.action.value})",
                    task,
                    changed,
                )
            if not pictures and task.video_urls:
                return WaitDecision(
                    WaitOutcome.SUCCESS,
                    f"Midjourney task {task.id} succeeded with {len(task.video_urls)} video URL(s)",
                    task,
                    changed,
                )
            missing = "picture URL" if pictures else "video URL"
            if self._success_without_urls_since is None:
                self._success_without_urls_since = now
            waited = now - self._success_without_urls_since
            if waited < self.missing_urls_grace:
                return WaitDecision(
                    WaitOutcome.PENDING, f"task {task.id} is SUCCESS but has no {missing} yet", task, changed
                )
            return WaitDecision(
                WaitOutcome.ERROR,
                f"Midjourney task {task.id} is SUCCESS but reported no {missing} for {waited:.0f} s",
                task,
                changed,
            )

        if task.status.is_failure:
            outcome = _FAILURE_OUTCOMES[task.status]
            reason = task.fail_reason or (
                "the task waits for a manual confirmation (/mj/submit/modal) and will not finish by itself; "
                "the submitting operator's modal_prompt confirms it"
                if task.status is TaskStatus.MODAL
                else "no reason given"
            )
            return WaitDecision(
                outcome, f"Midjourney task {task.id} ended {task.status.value}: {reason}", task, changed
            )

        if task.status is TaskStatus.UNKNOWN and task.raw_status and task.raw_status not in self._unknown_statuses:
            self._unknown_statuses.add(task.raw_status)
            return WaitDecision(
                WaitOutcome.PENDING,
                f"task {task.id} has a status this provider does not know ({task.raw_status!r}); "
                "treating it as pending",
                task,
                True,
            )
        shown = task.raw_status or "status not reported yet"
        return WaitDecision(WaitOutcome.PENDING, f"task {task.id} is {shown} at {task.progress}%", task, changed)


def result_or_raise(event: dict[str, Any]) -> dict[str, Any]:
    """
    Turn a finished wait (a trigger event or :meth:`WaitDecision.to_event`) into the task summary.

    :param event: ``{"status", "mj_task_id", "message", "task"}``.
    :returns: the task summary of a successful wait.
    :raises MidjourneyTaskFailedError: FAILURE, CANCEL or MODAL (fails without retries).
    :raises MidjourneyWaitTimeoutError: the wait timed out (the task's retries apply).
    :raises MidjourneyNotFoundError: the task was never found.
    :raises MidjourneyPermanentError: polling failed permanently (its class and fields are kept: auth,
        configuration…; rebuilt from the event's ``error``, or from ``error_type`` of an older trigger).
    :raises MidjourneyError: any other error.
    """
    status = event.get("status")
    mj_task_id = str(event.get("mj_task_id") or "?")
    message = str(event.get("message") or f"Midjourney task {mj_task_id} ended with status {status!r}")
    if status == WaitOutcome.SUCCESS.value and isinstance(event.get("task"), dict):
        return event["task"]
    if status in (WaitOutcome.FAILURE.value, WaitOutcome.CANCEL.value, WaitOutcome.MODAL.value):
        task = event.get("task") or {}
        raise MidjourneyTaskFailedError(message, mj_task_id=mj_task_id, status=str(task.get("status") or status))
    if status == WaitOutcome.TIMEOUT.value:
        raise MidjourneyWaitTimeoutError(message, mj_task_id=mj_task_id)
    if status == WaitOutcome.ERROR.value and isinstance(event.get("error"), dict):
        raise error_from_dict(event["error"], text=message)
    if status == WaitOutcome.ERROR.value and event.get("error_type"):
        raise error_from_dict({"type": event["error_type"], "message": message})
    raise MidjourneyError(message)


class ResumeAction(str, Enum):
    """What a new try should do with the Midjourney task an earlier try of the same task instance submitted."""

    #: The task is still being made (or cannot be checked right now): wait for it, submit nothing.
    REATTACH = "reattach"
    #: The task already finished successfully: take it, submit nothing.
    TAKE_FINISHED = "take_finished"
    #: The task ended FAILURE or CANCEL, or the server has long forgotten it: submit a new one.
    RESUBMIT = "resubmit"


#: Pseudo-statuses reported by :func:`status_for_resume` when there is no task to look at.
STATUS_NOT_FOUND: Final = "NOT_FOUND"
STATUS_UNREACHABLE: Final = "UNREACHABLE"


def status_for_resume(
    task: MidjourneyTask | None,
    *,
    error: MidjourneyError | None = None,
    submitted_at: float | None = None,
    not_found_grace: float = DEFAULT_NOT_FOUND_GRACE,
    now: float | None = None,
) -> str:
    """
    The status string a new try sees for its stored task (what ``ResumableJobMixin`` asks for).

    An id the server does not know counts as ``SUBMITTED`` within ``not_found_grace`` of its
    submission (some servers index new tasks late) and as ``NOT_FOUND`` after it. A check that
    failed with a transient error is ``UNREACHABLE``: the task may well be alive, so it is reattached
    to (the wait then tolerates the blip), never paid for twice.

    :param task: the stored task as fetched, or ``None`` if the server did not know it.
    :param error: the error the fetch raised, if it failed.
    :param submitted_at: epoch seconds of the stored submission, if known.
    :param not_found_grace: seconds an unknown id is tolerated after ``submitted_at``.
    :param now: epoch seconds (defaults to the current time).
    """
    from airflow_provider_mjvideo.exceptions import MidjourneyTransientError

    if error is not None:
        if isinstance(error, MidjourneyTransientError):
            return STATUS_UNREACHABLE
        raise error
    if task is None:
        now = time.time() if now is None else now
        if submitted_at is not None and now - submitted_at < not_found_grace:
            return TaskStatus.SUBMITTED.value
        return STATUS_NOT_FOUND
    return task.status.value


def resume_action(status: str) -> ResumeAction:
    """
    Decide what a new try does with its stored task, from :func:`status_for_resume`'s answer.

    Only FAILURE and CANCEL (and an id long unknown to the server) lead to a fresh, paid submission.
    MODAL is reattached to: it waits for a human on the server, and a new submission would not help.

    :param status: a :class:`TaskStatus` value or one of the pseudo-statuses above.
    """
    if status == TaskStatus.SUCCESS.value:
        return ResumeAction.TAKE_FINISHED
    if status == STATUS_NOT_FOUND or TaskStatus.parse(status).is_dead:
        return ResumeAction.RESUBMIT
    return ResumeAction.REATTACH
