"""What every Midjourney operator and sensor shares: the hook on its connection, and the cancel after a stop."""

from __future__ import annotations

from collections.abc import Mapping
from functools import cached_property
from typing import TYPE_CHECKING, Any, NoReturn

from airflow_provider_mjvideo.stopping import cancel_after_stop
from airflow_provider_mjvideo.validation import check_hook_params

if TYPE_CHECKING:
    from airflow_provider_mjvideo.hooks.midjourney import MidjourneyHook


class MidjourneyHookMixin:
    """
    The hook plumbing of the provider's operators and sensors (mixed into ``BaseOperator`` subclasses).

    ``hook_params`` are passed to :class:`~airflow_provider_mjvideo.hooks.midjourney.MidjourneyHook` (and to the
    trigger's async hook when the task defers): ``retry_limit``, ``retry_delay``, ``retry_max_delay``,
    ``list_chunk_size``, as dbt Cloud's operators take theirs. They are checked when the DAG is parsed.
    """

    midjourney_conn_id: str
    hook_params: dict[str, Any]
    #: Cancel the remote task after a stop; operators that never cancel leave it ``False``.
    cancel_on_stop: bool = False
    if TYPE_CHECKING:
        log: Any  # every BaseOperator has these two
        defer: Any

    def _use_connection(self, midjourney_conn_id: str, hook_params: Mapping[str, Any] | None) -> None:
        """Set the connection and the checked ``hook_params`` (call from ``__init__``)."""
        self.midjourney_conn_id = midjourney_conn_id
        self.hook_params = check_hook_params(hook_params)

    @cached_property
    def hook(self) -> MidjourneyHook:
        """The hook on ``midjourney_conn_id`` (imported on first use: DAG files parse without the HTTP stack)."""
        from airflow_provider_mjvideo.hooks.midjourney import MidjourneyHook

        return MidjourneyHook(self.midjourney_conn_id, **self.hook_params)

    def _defer_wait(
        self,
        mj_task_id: str,
        *,
        poll_interval: float,
        timeout: float,
        started_at: float | None,
        method_kwargs: dict[str, Any] | None = None,
        **trigger_kwargs: Any,
    ) -> NoReturn:
        """
        Defer to :class:`~airflow_provider_mjvideo.triggers.video.MidjourneyTaskTrigger` until the task finishes.

        The trigger gets this task's connection, ``hook_params`` and ``cancel_on_stop``; Airflow's deferral
        timeout is set past the trigger's own deadline, so ``execute_complete`` always sees the timeout event.
        ``method_kwargs`` reach ``execute_complete`` (JSON values: the operator object does not survive deferral).
        """
        from airflow_provider_mjvideo.triggers.video import MidjourneyTaskTrigger

        trigger, defer_timeout = MidjourneyTaskTrigger.for_wait(
            mj_task_id,
            midjourney_conn_id=self.midjourney_conn_id,
            poll_interval=poll_interval,
            timeout=timeout,
            started_at=started_at,
            cancel_on_kill=self.cancel_on_stop,
            hook_params=self.hook_params,
            **trigger_kwargs,
        )
        self.defer(trigger=trigger, method_name="execute_complete", kwargs=method_kwargs, timeout=defer_timeout)
        raise AssertionError("BaseOperator.defer() raises TaskDeferred")  # pragma: no cover

    def _cancel_after_stop(self, mj_task_id: str, why: str) -> None:
        """Best-effort cancel of the remote task after a worker-side stop (``cancel_on_stop``); never raises."""
        cancel_after_stop(self.hook, mj_task_id, why, enabled=self.cancel_on_stop, logger=self.log)
