"""A sensor that waits for a Midjourney task and hands on its video URLs."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from airflow.providers.common.compat.sdk import (
    AirflowSensorTimeout,
    AirflowSkipException,
    BaseSensorOperator,
    PokeReturnValue,
    conf,
)

from airflow_provider_mjvideo.connection import DEFAULT_CONN_ID
from airflow_provider_mjvideo.exceptions import MidjourneyValidationError
from airflow_provider_mjvideo.operators.base import MidjourneyHookMixin
from airflow_provider_mjvideo.validation import check_expect, check_positive_number, check_task_id, is_unresolved
from airflow_provider_mjvideo.waiting import (
    DEFAULT_MISSING_URLS_GRACE,
    DEFAULT_NOT_FOUND_GRACE,
    WaitOutcome,
    WaitTracker,
    result_or_raise,
)

if TYPE_CHECKING:
    from airflow.providers.common.compat.sdk import Context


class MidjourneyTaskSensor(MidjourneyHookMixin, BaseSensorOperator):
    """
    Wait until a Midjourney task finishes; return its summary as the XCom value.

    A video task is done with its clips' URLs, an image task (imagine, upscale…) with its picture
    (``expect``). The summary is a JSON dict: ``id``, ``status``, ``progress``, ``video_urls``, ``image_url``,
    ``image_urls``, ``fail_reason``, ``prompt``, ``action``, ``kind``, ``buttons``, ``state``, ``submit_time``,
    ``start_time``, ``finish_time``.
    FAILURE, CANCEL and MODAL fail the task at once without retries, with the server's reason. A
    ``""`` or unknown status counts as pending; an id the server does not know yet and a SUCCESS
    without URLs are tolerated for a bounded grace. Network blips and 429/5xx answers are retried
    and never fail the sensor.

    :param mj_task_id: the task to wait for, usually ``submit.output`` (templated).
    :param midjourney_conn_id: the Airflow connection id.
    :param deferrable: wait in the triggerer instead of a worker slot.
    :param poke_interval: seconds between polls.
    :param timeout: seconds to wait at most.
    :param mode: ``poke`` or ``reschedule`` (ignored when deferrable).
    :param not_found_grace: seconds an id unknown to the server is tolerated.
    :param missing_urls_grace: seconds a SUCCESS without its video URLs (or picture) is tolerated.
    :param cancel_on_stop: cancel the remote task (best effort) when the wait times out (poke,
        reschedule and deferrable modes), when the worker kills this task, or when a user marks it
        success or failed (or deletes its run) while deferred (Airflow 3.3+). A cleared sensor keeps the
        video: its next try waits for the same id.
    :param hook_params: keyword arguments of the hook (``retry_limit``, ``retry_delay``, ``retry_max_delay``,
        ``list_chunk_size``), also used by the trigger when the sensor defers.
    :param expect: what the task's success must carry: ``"auto"`` (from its action: pictures for imagine,
        upscale, variation…, clips otherwise), ``"video"`` or ``"image"``.
    """

    template_fields: Sequence[str] = ("mj_task_id",)
    ui_color = "#d9c2ff"

    def __init__(
        self,
        *,
        mj_task_id: str,
        midjourney_conn_id: str = DEFAULT_CONN_ID,
        deferrable: bool = conf.getboolean("operators", "default_deferrable", fallback=False),
        poke_interval: float = 10.0,
        timeout: float = 3600.0,
        not_found_grace: float = DEFAULT_NOT_FOUND_GRACE,
        missing_urls_grace: float = DEFAULT_MISSING_URLS_GRACE,
        cancel_on_stop: bool = True,
        hook_params: dict[str, Any] | None = None,
        expect: str = "auto",
        **kwargs: Any,
    ) -> None:
        check_positive_number("poke_interval", poke_interval)
        check_positive_number("timeout", timeout)
        # Checked here rather than left to BaseSensorOperator, whose error type differs between Airflow versions
        # (AirflowException on 3.0, ValueError later): a typo in mode is a MidjourneyValidationError everywhere.
        if "mode" in kwargs and kwargs["mode"] not in self.valid_modes:
            modes = " or ".join(repr(mode) for mode in self.valid_modes)
            raise MidjourneyValidationError("mode", f"must be {modes}, got {kwargs['mode']!r:.40}")
        if not is_unresolved(mj_task_id):
            check_task_id("mj_task_id", mj_task_id)
        super().__init__(poke_interval=poke_interval, timeout=timeout, **kwargs)
        self.mj_task_id = mj_task_id
        self._use_connection(midjourney_conn_id, hook_params)
        self.deferrable = deferrable
        self.not_found_grace = check_positive_number("not_found_grace", not_found_grace)
        self.missing_urls_grace = check_positive_number("missing_urls_grace", missing_urls_grace)
        self.cancel_on_stop = cancel_on_stop
        self.expect = check_expect("expect", expect)
        self._tracker: WaitTracker | None = None

    def execute(self, context: Context) -> Any:
        """Poll (poke/reschedule), or check once and then defer to the trigger."""
        self.mj_task_id = check_task_id("mj_task_id", self.mj_task_id)
        if not self.deferrable:
            try:
                return super().execute(context)
            except (AirflowSensorTimeout, AirflowSkipException) as err:
                # With soft_fail a timeout arrives as a skip: the clock, not its words, tells it from other skips.
                if isinstance(err, AirflowSensorTimeout) or self._wait_exceeded(context):
                    self._cancel_wait("its wait timed out")
                raise
        done = self.poke(context)
        if done:
            return done.xcom_value if isinstance(done, PokeReturnValue) else None
        self._defer_wait(
            self.mj_task_id,
            poll_interval=self.poke_interval,
            timeout=self.timeout,
            started_at=self._wait_started_at(context),
            not_found_grace=self.not_found_grace,
            missing_urls_grace=self.missing_urls_grace,
            expect=self.expect,
        )

    def _wait_exceeded(self, context: Context) -> bool:
        """Whether the wait has run for its whole ``timeout`` (what a soft-fail skip of the base sensor means)."""
        return time.time() - self._wait_started_at(context) >= float(self.timeout)

    def _wait_started_at(self, context: Context) -> float:
        if self._tracker is not None:
            return self._tracker.started_at
        first = None
        if self.reschedule:
            first = context["ti"].get_first_reschedule_date(context)
        return first.timestamp() if first else time.time()

    def poke(self, context: Context) -> bool | PokeReturnValue:
        """Fetch the task once and decide; transient errors count as "not yet"."""
        if self._tracker is None:
            self._tracker = WaitTracker(
                str(self.mj_task_id),
                started_at=self._wait_started_at(context),
                not_found_grace=self.not_found_grace,
                missing_urls_grace=self.missing_urls_grace,
                expect=self.expect,
            )
        decision = self._tracker.poll(lambda: self.hook.find_task(self.mj_task_id), self.log)
        if not decision.done:
            return False
        return PokeReturnValue(True, xcom_value=result_or_raise(decision.to_event(str(self.mj_task_id))))

    def execute_complete(self, context: Context, event: dict[str, Any]) -> dict[str, Any]:
        """Resume after the trigger fired: return the summary, or fail with the server's reason."""
        if event.get("status") == WaitOutcome.TIMEOUT.value:
            self._cancel_wait("its wait timed out")
            message = str(event.get("message") or f"Timed out waiting for Midjourney task {self.mj_task_id}")
            if self.soft_fail:
                raise AirflowSkipException(message)
            raise AirflowSensorTimeout(message)
        summary = result_or_raise(event)
        results = summary["image_urls"] if summary.get("kind") == "image" else summary["video_urls"]
        self.log.info("Midjourney task %s succeeded: %s", summary["id"], ", ".join(results))
        return summary

    def on_kill(self) -> None:
        """Cancel the awaited task (best effort) when the worker kills this sensor."""
        self._cancel_wait("the Airflow task was killed")

    def _cancel_wait(self, why: str) -> None:
        if is_unresolved(self.mj_task_id) or not self.mj_task_id:
            return
        self._cancel_after_stop(str(self.mj_task_id), why)


__all__ = ["MidjourneyTaskSensor"]
