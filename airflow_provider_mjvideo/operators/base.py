"""What every Midjourney operator and sensor shares: the hook on its connection, and the cancel after a stop."""

from __future__ import annotations

from collections.abc import Mapping
from functools import cached_property
from typing import TYPE_CHECKING, Any

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
        log: Any  # every BaseOperator has one

    def _use_connection(self, midjourney_conn_id: str, hook_params: Mapping[str, Any] | None) -> None:
        """Set the connection and the checked ``hook_params`` (call from ``__init__``)."""
        self.midjourney_conn_id = midjourney_conn_id
        self.hook_params = check_hook_params(hook_params)

    @cached_property
    def hook(self) -> MidjourneyHook:
        """The hook on ``midjourney_conn_id`` (imported on first use: DAG files parse without the HTTP stack)."""
        from airflow_provider_mjvideo.hooks.midjourney import MidjourneyHook

        return MidjourneyHook(self.midjourney_conn_id, **self.hook_params)

    def _cancel_after_stop(self, mj_task_id: str, why: str) -> None:
        """Best-effort cancel of the remote task after a worker-side stop (``cancel_on_stop``); never raises."""
        cancel_after_stop(self.hook, mj_task_id, why, enabled=self.cancel_on_stop, logger=self.log)
