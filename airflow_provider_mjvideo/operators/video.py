"""Operators that submit Midjourney videos."""

from __future__ import annotations

import time
from collections.abc import Sequence
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.providers.common.compat.sdk import BaseOperator, conf

from airflow_provider_mjvideo.hooks.midjourney import MidjourneyHook, fetch_path
from airflow_provider_mjvideo.links import MidjourneyVideoLink
from airflow_provider_mjvideo.triggers.video import MidjourneyTaskTrigger
from airflow_provider_mjvideo.validation import (
    MAX_STATE_LENGTH,
    build_video_request,
    check_positive_number,
)
from airflow_provider_mjvideo.waiting import result_or_raise

if TYPE_CHECKING:
    from airflow.providers.common.compat.sdk import Context

#: XCom key of the finished task's summary (with ``wait_for_completion=True``).
TASK_SUMMARY_XCOM_KEY = "mj_task"


def default_state(context: Context) -> str:
    """
    A correlation string naming the Airflow task instance, sent as ``state`` when the user gives none.

    It is echoed back on the Midjourney task, so a video found in the server's own UI can be traced
    to the DAG run that paid for it.
    """
    ti = context["ti"]
    map_index = getattr(ti, "map_index", -1)
    suffix = f"[{map_index}]" if map_index is not None and map_index >= 0 else ""
    state = f"airflow:{ti.dag_id}/{context['run_id']}/{ti.task_id}{suffix}"
    return state[:MAX_STATE_LENGTH]


class SubmitVideoOperator(BaseOperator):
    """
    Submit an image-to-video job (or extend a clip of an earlier video) and push the task id to XCom.

    The XCom return value is the Midjourney task id (a string). With ``wait_for_completion=True`` the
    operator also waits for the video, pushes its summary under the ``mj_task`` XCom key, and still
    returns the id. Literal parameters are validated when the DAG is parsed; templated ones after
    rendering, before any request.

    :param prompt: the text prompt (templated).
    :param image: URL or base64 data URI of the first frame; required unless ``action="extend"`` (templated).
    :param motion: ``"low"`` or ``"high"`` (templated).
    :param action: ``None`` for a new video, ``"extend"`` to extend a clip of ``mj_task_id`` (templated).
    :param index: which clip of the parent to extend, 0-3 (templated; ``"2"`` is sent as ``2``).
    :param mj_task_id: the parent video's task id for an extend, e.g. ``submit.output`` (templated).
    :param notify_hook: an http(s) URL the server POSTs progress to (templated).
    :param state: free text echoed on the task, at most 255 characters (templated). Default: a string
        naming the DAG, run, task and map index.
    :param extra_body: server-specific fields (``batchSize``, ``videoType``, ``endImage``, ``loop``) (templated).
    :param midjourney_conn_id: the Airflow connection id.
    :param wait_for_completion: wait until the video is done.
    :param deferrable: wait in the triggerer instead of a worker slot (needs ``wait_for_completion``).
    :param poll_interval: seconds between status polls while waiting.
    :param timeout: seconds to wait at most; then the task fails with a timeout (its retries apply).
    """

    template_fields: Sequence[str] = (
        "prompt",
        "image",
        "motion",
        "action",
        "index",
        "mj_task_id",
        "notify_hook",
        "state",
        "extra_body",
    )
    template_fields_renderers = {"extra_body": "json", "prompt": "py"}
    operator_extra_links = (MidjourneyVideoLink(),)
    ui_color = "#e8d9ff"

    def __init__(
        self,
        *,
        prompt: str,
        image: str | None = None,
        motion: str = "low",
        action: str | None = None,
        index: int | str | None = None,
        mj_task_id: str | None = None,
        notify_hook: str | None = None,
        state: str | None = None,
        extra_body: dict[str, Any] | None = None,
        midjourney_conn_id: str = MidjourneyHook.default_conn_name,
        wait_for_completion: bool = False,
        deferrable: bool = conf.getboolean("operators", "default_deferrable", fallback=False),
        poll_interval: float = 10.0,
        timeout: float = 3600.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.prompt = prompt
        self.image = image
        self.motion = motion
        self.action = action
        self.index = index
        self.mj_task_id = mj_task_id
        self.notify_hook = notify_hook
        self.state = state
        self.extra_body = extra_body
        self.midjourney_conn_id = midjourney_conn_id
        self.wait_for_completion = wait_for_completion
        self.deferrable = deferrable
        self.poll_interval = check_positive_number("poll_interval", poll_interval)
        self.timeout = check_positive_number("timeout", timeout)
        # Parse-time check of whatever is literal; the hook checks the rendered values before sending.
        build_video_request(
            prompt,
            image,
            motion,
            action=action,
            index=index,
            mj_task_id=mj_task_id,
            notify_hook=notify_hook,
            state=state,
            extra_body=extra_body,
            allow_unresolved=True,
        )

    @cached_property
    def hook(self) -> MidjourneyHook:
        """The hook on ``midjourney_conn_id``."""
        return MidjourneyHook(self.midjourney_conn_id)

    def execute(self, context: Context) -> str:
        """Submit the video; wait for it if asked; return the Midjourney task id."""
        if self.state is None:
            self.state = default_state(context)
        submitted_at = time.time()
        mj_task_id = self.hook.submit_video(
            self.prompt,
            self.image,
            self.motion,
            action=self.action,
            index=self.index,
            mj_task_id=self.mj_task_id,
            notify_hook=self.notify_hook,
            state=self.state,
            extra_body=self.extra_body,
        )
        MidjourneyVideoLink.persist(context, self.hook.settings.url(fetch_path(mj_task_id)))
        if not self.wait_for_completion:
            return mj_task_id
        if self.deferrable:
            trigger, defer_timeout = MidjourneyTaskTrigger.for_wait(
                mj_task_id,
                midjourney_conn_id=self.midjourney_conn_id,
                poll_interval=self.poll_interval,
                timeout=self.timeout,
                started_at=submitted_at,
            )
            self.defer(trigger=trigger, method_name="execute_complete", timeout=defer_timeout)
        task = self.hook.wait_for_task(
            mj_task_id, poll_interval=self.poll_interval, timeout=self.timeout, started_at=submitted_at
        )
        return self._finish(context, task.to_summary())

    def execute_complete(self, context: Context, event: dict[str, Any]) -> str:
        """Resume after the trigger fired: fail on failure/cancel/modal/timeout/error, else finish."""
        return self._finish(context, result_or_raise(event))

    def _finish(self, context: Context, summary: dict[str, Any]) -> str:
        context["ti"].xcom_push(key=TASK_SUMMARY_XCOM_KEY, value=summary)
        if summary.get("video_urls"):
            MidjourneyVideoLink.persist(context, summary["video_urls"][0])
        self.log.info("Midjourney task %s finished: %s", summary["id"], ", ".join(summary.get("video_urls") or []))
        return str(summary["id"])
