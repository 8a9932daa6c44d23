"""The deferrable wait: polls a Midjourney task from the triggerer until it finishes."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

from airflow_provider_mjvideo.exceptions import MidjourneyConnectionError, MidjourneyPermanentError
from airflow_provider_mjvideo.stopping import (
    acancel_after_stop,
    kill_verdict,
    on_kill_limits,
    outlast_cancellation,
    task_instance_state,
)
from airflow_provider_mjvideo.triggers.polling import PER_TASK_JITTER_CAP, subscribe
from airflow_provider_mjvideo.waiting import (
    DEFAULT_MISSING_URLS_GRACE,
    DEFAULT_NOT_FOUND_GRACE,
    WaitDecision,
    WaitOutcome,
    WaitTracker,
)

if TYPE_CHECKING:
    from airflow_provider_mjvideo.hooks.midjourney import MidjourneyAsyncHook

#: Seconds Airflow's deferral timeout is set beyond the trigger's own deadline.
DEFER_TIMEOUT_MARGIN = 60.0
#: Seconds a batched wait gives the shared poller's answer at the deadline before deciding on what it last saw.
DEADLINE_ANSWER_GRACE = 1.0


class MidjourneyTaskTrigger(BaseTrigger):
    """
    Wait in the triggerer until a Midjourney task succeeds, fails or times out.

    Events are ``{"status", "mj_task_id", "message", "task", "error_type", "error"}`` with ``status`` one of
    ``success``, ``failure``, ``cancel``, ``modal``, ``timeout`` or ``error``, ``task`` the task summary and
    ``error`` the ending error's dict (:meth:`MidjourneyError.to_dict`).
    Transient errors (network, 429, 5xx, garbled answers) are retried inside the loop and never
    become an event; the trigger emits ``timeout`` itself at ``end_time``, before Airflow's own
    deferral timeout.

    The class path and keyword arguments are a public contract: fields are only ever added, with
    defaults.

    :param mj_task_id: the Midjourney task id.
    :param midjourney_conn_id: the Airflow connection id.
    :param poll_interval: seconds between polls.
    :param end_time: epoch seconds at which to give up with a ``timeout`` event; ``None``: never.
    :param started_at: epoch seconds of the submission (the unknown-id grace counts from it).
    :param not_found_grace: seconds an id unknown to the server is tolerated after ``started_at``.
    :param missing_urls_grace: seconds a SUCCESS without video URLs is tolerated.
    :param cancel_on_kill: cancel the remote task when a person marks, clears or deletes the deferred task
        (Airflow 3.3+); never when the trigger only moves to another triggerer or the triggerer stops.
    :param hook_params: keyword arguments of the async hook (``retry_limit``, ``retry_delay``,
        ``retry_max_delay``, ``list_chunk_size``), as the task's ``hook_params``.
    :param expect: what success must carry: ``"video"`` (clips), ``"image"`` (a picture) or ``"auto"`` (the
        task's own kind, from its action).
    """

    def __init__(
        self,
        mj_task_id: str,
        midjourney_conn_id: str = "midjourney_default",
        poll_interval: float = 10.0,
        end_time: float | None = None,
        started_at: float | None = None,
        not_found_grace: float = DEFAULT_NOT_FOUND_GRACE,
        missing_urls_grace: float = DEFAULT_MISSING_URLS_GRACE,
        cancel_on_kill: bool = True,
        hook_params: dict[str, Any] | None = None,
        expect: str = "auto",
    ) -> None:
        super().__init__()
        self.mj_task_id = str(mj_task_id)
        self.midjourney_conn_id = midjourney_conn_id
        self.poll_interval = float(poll_interval)
        self.end_time = None if end_time is None else float(end_time)
        self.started_at = time.time() if started_at is None else float(started_at)
        self.not_found_grace = float(not_found_grace)
        self.missing_urls_grace = float(missing_urls_grace)
        self.cancel_on_kill = bool(cancel_on_kill)
        self.hook_params = dict(hook_params or {})
        self.expect = str(expect)

    @classmethod
    def for_wait(
        cls,
        mj_task_id: str,
        *,
        midjourney_conn_id: str,
        poll_interval: float,
        timeout: float | None,
        started_at: float | None = None,
        **kwargs: Any,
    ) -> tuple[MidjourneyTaskTrigger, timedelta | None]:
        """
        Build the trigger for a wait of ``timeout`` seconds, and the deferral timeout to pass to ``defer``.

        The trigger emits its own ``timeout`` event at the deadline; Airflow's deferral timeout is set
        a margin later, so it never pre-empts the trigger (which would skip ``execute_complete``).
        """
        end_time = time.time() + timeout if timeout else None
        trigger = cls(
            mj_task_id,
            midjourney_conn_id=midjourney_conn_id,
            poll_interval=poll_interval,
            end_time=end_time,
            started_at=started_at,
            **kwargs,
        )
        defer_timeout = timedelta(seconds=timeout + DEFER_TIMEOUT_MARGIN + 2 * poll_interval) if timeout else None
        return trigger, defer_timeout

    def serialize(self) -> tuple[str, dict[str, Any]]:
        """Return the class path and JSON-only keyword arguments (no secrets: only the connection id)."""
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "mj_task_id": self.mj_task_id,
                "midjourney_conn_id": self.midjourney_conn_id,
                "poll_interval": self.poll_interval,
                "end_time": self.end_time,
                "started_at": self.started_at,
                "not_found_grace": self.not_found_grace,
                "missing_urls_grace": self.missing_urls_grace,
                "cancel_on_kill": self.cancel_on_kill,
                "hook_params": self.hook_params,
                "expect": self.expect,
            },
        )

    def _tracker(self) -> WaitTracker:
        return WaitTracker(
            self.mj_task_id,
            started_at=self.started_at,
            deadline=self.end_time,
            not_found_grace=self.not_found_grace,
            missing_urls_grace=self.missing_urls_grace,
            expect=self.expect,
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        """
        Poll until the task finishes; yield exactly one event.

        With the connection's ``batch_polling`` extra on (the default) the task id joins the shared
        poller of this connection in this event loop (:mod:`airflow_provider_mjvideo.triggers.polling`),
        which asks for many tasks per ``list-by-condition`` request; off, the trigger fetches its own
        task once per ``poll_interval``, the first time after a random part of the interval. Either way
        every observation goes through this trigger's own :class:`WaitTracker`.
        """
        decision = await self._wait()
        yield TriggerEvent(decision.to_event(self.mj_task_id))

    async def _wait(self) -> WaitDecision:
        tracker = self._tracker()
        hook = _async_hook(self.midjourney_conn_id, **self.hook_params)
        try:
            settings = await hook.load_settings()
            if settings.batch_polling:
                return await self._wait_batched(hook, tracker)
            return await self._wait_per_task(hook, tracker)
        except MidjourneyPermanentError as err:
            # Only configuration problems get here (the loops turn poll errors into decisions).
            message = f"Cannot poll Midjourney task {self.mj_task_id}: {err}"
            return WaitDecision(WaitOutcome.ERROR, message, error=err)

    def _answer_limit(self) -> float | None:
        """Seconds to wait for the next answer: the deadline plus a grace, so polls never hold the timeout back."""
        return None if self.end_time is None else max(0.0, self.end_time - time.time()) + DEADLINE_ANSWER_GRACE

    async def _wait_batched(self, hook: MidjourneyAsyncHook, tracker: WaitTracker) -> WaitDecision:
        """Wait on the shared poller's observations; unsubscribes on return, error and cancellation."""
        async with subscribe(hook, self.mj_task_id, poll_interval=self.poll_interval, end_time=self.end_time) as sub:
            while True:
                try:
                    observation = await asyncio.wait_for(sub.next(), self._answer_limit())
                except asyncio.TimeoutError:
                    decision = self._decide_without_answer(tracker)
                else:
                    decision = tracker.record(observation, self.log)
                if decision.done:
                    return decision

    def _decide_without_answer(self, tracker: WaitTracker) -> WaitDecision:
        """The deadline passed and no answer came in time: decide on what was seen last."""
        return tracker.record(
            tracker.last_task
            or MidjourneyConnectionError(f"no answer about task {self.mj_task_id} from the server by the deadline"),
            self.log,
        )

    async def _wait_per_task(self, hook: MidjourneyAsyncHook, tracker: WaitTracker) -> WaitDecision:
        """One fetch per poll interval on this trigger's own HTTP session (``batch_polling`` off)."""
        async with hook.api() as api:
            # Spread the first polls over the interval: per-task pollers started together stay apart.
            jitter = random.uniform(0.0, min(self.poll_interval, PER_TASK_JITTER_CAP))
            await asyncio.sleep(min(self._next_sleep(), jitter))
            while True:
                try:
                    step = tracker.apoll(lambda: api.find_task(self.mj_task_id), self.log)
                    decision = await asyncio.wait_for(step, self._answer_limit())
                except asyncio.TimeoutError:
                    decision = self._decide_without_answer(tracker)
                if decision.done:
                    return decision
                await asyncio.sleep(self._next_sleep())

    def _next_sleep(self) -> float:
        if self.end_time is None:
            return self.poll_interval
        return max(0.0, min(self.poll_interval, self.end_time - time.time()))

    async def on_kill(self) -> None:
        """
        Cancel the remote task when a person stopped the deferred task (Airflow 3.3+); never raises.

        Airflow's triggerer calls ``on_kill`` for every trigger it stops with its "user action" message,
        also for triggers it lost to another triggerer after a stall; those videos are still wanted. So
        the task instance's current state is asked for first, and the task is cancelled only when the
        task instance was ended by a person (marked success/failed, its run deleted); a cleared task instance
        keeps its video for its next try. When the state cannot be read, nothing is cancelled (logged at
        WARNING). See :mod:`airflow_provider_mjvideo.stopping`.
        """
        if not self.cancel_on_kill:
            return
        # Airflow re-cancels a trigger every second while its on_kill runs: keep the bounded work going.
        await outlast_cancellation(self._kill())

    async def _kill(self) -> None:
        started = time.monotonic()
        lookup_timeout, budget = on_kill_limits()
        verdict = kill_verdict(await task_instance_state(self.task_instance, lookup_timeout))
        asked = time.monotonic() - started
        log = self.log.warning if verdict.warn else self.log.info
        if not verdict.cancel:
            log(
                "Trigger of Midjourney task %s stopped; leaving the task running: %s (asked Airflow in %.1f s)",
                self.mj_task_id,
                verdict.reason,
                asked,
            )
            return
        log(
            "Trigger of Midjourney task %s stopped and %s (asked Airflow in %.1f s): cancelling it",
            self.mj_task_id,
            verdict.reason,
            asked,
        )
        await acancel_after_stop(
            self.midjourney_conn_id,
            self.mj_task_id,
            "the deferred task was stopped",
            logger=self.log,
            budget=max(1.0, budget - (time.monotonic() - started)),
        )


def _async_hook(midjourney_conn_id: str, **kwargs: Any) -> MidjourneyAsyncHook:
    """
    Build the trigger's async hook; imported on first use.

    Importing this module (DAG files do, through the operators and sensors) thus stays free of aiohttp,
    requests and the http provider.
    """
    from airflow_provider_mjvideo.hooks.midjourney import MidjourneyAsyncHook

    return MidjourneyAsyncHook(midjourney_conn_id, **kwargs)
