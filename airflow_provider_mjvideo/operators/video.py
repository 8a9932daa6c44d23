"""Operators that submit Midjourney videos."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from airflow.providers.common.compat.sdk import BaseOperator, ResumableJobMixin, conf

from airflow_provider_mjvideo.assets import attach_submit_extra
from airflow_provider_mjvideo.connection import DEFAULT_CONN_ID
from airflow_provider_mjvideo.exceptions import MidjourneyError, MidjourneyWaitTimeoutError
from airflow_provider_mjvideo.lineage import submit_facets_on_complete
from airflow_provider_mjvideo.links import MidjourneyVideoLink
from airflow_provider_mjvideo.operators.base import MidjourneyHookMixin
from airflow_provider_mjvideo.routes import SUBMIT_VIDEO_PATH, fetch_path
from airflow_provider_mjvideo.usage import record_submit
from airflow_provider_mjvideo.validation import (
    MAX_STATE_LENGTH,
    VIDEO_FIELDS,
    build_video_request,
    check_bool,
    check_positive_number,
    is_unresolved,
)
from airflow_provider_mjvideo.waiting import (
    DEFAULT_NOT_FOUND_GRACE,
    ResumeAction,
    WaitOutcome,
    result_or_raise,
    resume_action,
    status_for_resume,
)

if TYPE_CHECKING:
    from airflow.providers.common.compat.sdk import Context

#: XCom key of the finished task's summary (with ``wait_for_completion=True``).
TASK_SUMMARY_XCOM_KEY = "mj_task"
#: ``task_state_store`` keys (Airflow 3.3+): the submitted task id, and when it was submitted.
STORED_TASK_ID_KEY = "mj_task_id"
STORED_SUBMITTED_AT_KEY = "mj_submitted_at"


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


class SubmitVideoOperator(MidjourneyHookMixin, ResumableJobMixin, BaseOperator):
    """
    Submit an image-to-video job (or extend a clip of an earlier video) and push the task id to XCom.

    The XCom return value is the Midjourney task id (a string). With ``wait_for_completion=True`` the
    operator also waits for the video, pushes its summary under the ``mj_task`` XCom key, and still
    returns the id. Literal parameters are validated when the DAG is parsed; templated ones after
    rendering, before any request.

    Never paying twice (Airflow 3.3+): the submitted id is kept in the task instance's
    ``task_state_store``. A new try (after a crash, a lost worker, a timeout or any failure) looks at
    that task first: it reattaches to a task still being made, takes a finished one, and submits again
    only after FAILURE or CANCEL. Below 3.3 every try submits (common-compat's stand-in).

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
    :param cancel_on_stop: cancel the remote task (best effort) when this task is killed, marked or
        cleared while deferred, or its wait times out.
    :param force_new_submission: submit a new video even if an earlier try of this task instance
        submitted one that is alive or finished (templated; ``True``/``"true"``).
    :param durable: keep the submitted id in ``task_state_store`` (Airflow 3.3+); ``False`` turns
        reattaching off entirely.
    :param hook_params: keyword arguments of the hook (``retry_limit``, ``retry_delay``, ``retry_max_delay``,
        ``list_chunk_size``), also used by the trigger when the wait defers.
    """

    external_id_key = STORED_TASK_ID_KEY

    template_fields: Sequence[str] = (*VIDEO_FIELDS, "force_new_submission")
    template_fields_renderers = {"extra_body": "json", "prompt": "py"}
    operator_extra_links = (MidjourneyVideoLink(),)
    ui_color = "#e8d9ff"
    get_openlineage_facets_on_complete = submit_facets_on_complete

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
        midjourney_conn_id: str = DEFAULT_CONN_ID,
        wait_for_completion: bool = False,
        deferrable: bool = conf.getboolean("operators", "default_deferrable", fallback=False),
        poll_interval: float = 10.0,
        timeout: float = 3600.0,
        cancel_on_stop: bool = True,
        force_new_submission: bool | str = False,
        hook_params: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self._use_connection(midjourney_conn_id, hook_params)
        self.prompt = prompt
        self.image = image
        self.motion = motion
        self.action = action
        self.index = index
        self.mj_task_id = mj_task_id
        self.notify_hook = notify_hook
        self.state = state
        self.extra_body = extra_body
        self.wait_for_completion = wait_for_completion
        self.deferrable = deferrable
        self.poll_interval = check_positive_number("poll_interval", poll_interval)
        self.timeout = check_positive_number("timeout", timeout)
        self.cancel_on_stop = cancel_on_stop
        self.force_new_submission = force_new_submission
        if not is_unresolved(force_new_submission):
            check_bool("force_new_submission", force_new_submission)
        self._live_task_id: str | None = None
        self._submitted_at: float | None = None
        self._result: str | None = None
        # Parse-time check of whatever is literal; the hook checks the rendered values before sending.
        build_video_request(**self._video_fields(), allow_unresolved=True)

    def _video_fields(self) -> dict[str, Any]:
        """The submission's parameters as the hook's ``submit_video`` takes them (rendered, once running)."""
        return {name: getattr(self, name) for name in VIDEO_FIELDS}

    def execute(self, context: Context) -> str:
        """Submit the video (or reattach to the one an earlier try submitted); wait if asked; return the id."""
        if self.state is None:
            self.state = default_state(context)
        if check_bool("force_new_submission", self.force_new_submission):
            store = context.get("task_state_store")
            if store is not None and store.get(STORED_TASK_ID_KEY):
                self.log.info("force_new_submission is set: not reattaching to %s", store.get(STORED_TASK_ID_KEY))
                store.delete(STORED_TASK_ID_KEY)
        return self.execute_resumable(context)

    # -- ResumableJobMixin: how to submit, look at and wait for one Midjourney task -------------------

    def submit_job(self, context: Context) -> str:
        """Submit the video (validated first, no request on bad input); return the Midjourney task id."""
        self._submitted_at = time.time()
        mj_task_id = self.hook.submit_video(**self._video_fields())
        self._live_task_id = mj_task_id
        record_submit(
            context,
            self.hook,
            SUBMIT_VIDEO_PATH,
            mj_task_id,
            action=self.action or "video",
            extra_body=self.extra_body,
            submitted_at=self._submitted_at,
        )
        store = context.get("task_state_store")
        if store is not None:
            store.set(STORED_SUBMITTED_AT_KEY, self._submitted_at)
        MidjourneyVideoLink.persist(context, self.hook.settings.url(fetch_path(mj_task_id)))
        return mj_task_id

    def get_job_status(self, external_id: Any, context: Context) -> str:
        """The stored task's status as a new try sees it (see :func:`waiting.status_for_resume`)."""
        store = context.get("task_state_store")
        submitted_at = store.get(STORED_SUBMITTED_AT_KEY) if store is not None else None
        self._submitted_at = float(submitted_at) if isinstance(submitted_at, (int, float)) else None
        try:
            task, error = self.hook.find_task(str(external_id)), None
        except MidjourneyError as err:
            task, error = None, err
        status = status_for_resume(
            task, error=error, submitted_at=self._submitted_at, not_found_grace=DEFAULT_NOT_FOUND_GRACE
        )
        action = resume_action(status)
        self.log.info("An earlier try submitted Midjourney task %s (%s): %s", external_id, status, action.value)
        if action is not ResumeAction.RESUBMIT:
            self._live_task_id = str(external_id)
            record_submit(
                context,
                self.hook,
                SUBMIT_VIDEO_PATH,
                str(external_id),
                action=self.action or "video",
                extra_body=self.extra_body,
                submitted_at=self._submitted_at,
                reattach=True,
            )
        return status

    def is_job_active(self, status: str) -> bool:
        """Whether to reattach to the stored task."""
        return resume_action(status) is ResumeAction.REATTACH

    def is_job_succeeded(self, status: str) -> bool:
        """Whether the stored task already finished successfully."""
        return resume_action(status) is ResumeAction.TAKE_FINISHED

    def poll_until_complete(self, external_id: Any, context: Context) -> str:  # type: ignore[override]
        """Wait for the task when ``wait_for_completion`` (polling here, or deferring); return its id."""
        self._result = self._wait_and_finish(str(external_id), context)
        return self._result

    def get_job_result(self, external_id: Any, context: Context) -> str:
        """The XCom return value: the task id (after the summary was pushed, when waiting)."""
        if self._result is None:
            self._result = self._wait_and_finish(str(external_id), context)
        return self._result

    # -- waiting -----------------------------------------------------------------------------------------

    def _wait_and_finish(self, mj_task_id: str, context: Context) -> str:
        if not self.wait_for_completion:
            return mj_task_id
        if self.deferrable:
            self._defer_wait(
                mj_task_id, poll_interval=self.poll_interval, timeout=self.timeout, started_at=self._submitted_at
            )
        try:
            task = self.hook.wait_for_task(
                mj_task_id, poll_interval=self.poll_interval, timeout=self.timeout, started_at=self._submitted_at
            )
        except MidjourneyWaitTimeoutError:
            self._cancel_after_stop(mj_task_id, "its wait timed out")
            raise
        self._live_task_id = None
        return self._finish(context, task.to_summary())

    def execute_complete(self, context: Context, event: dict[str, Any]) -> str:
        """Resume after the trigger fired: fail on failure/cancel/modal/timeout/error, else finish."""
        if event.get("status") == WaitOutcome.TIMEOUT.value and event.get("mj_task_id"):
            self._cancel_after_stop(str(event["mj_task_id"]), "its wait timed out")
        return self._finish(context, result_or_raise(event))

    def on_kill(self) -> None:
        """Cancel the task being waited for (best effort) when the worker kills this task."""
        if self._live_task_id:
            self._cancel_after_stop(self._live_task_id, "the Airflow task was killed")

    def _finish(self, context: Context, summary: dict[str, Any]) -> str:
        context["ti"].xcom_push(key=TASK_SUMMARY_XCOM_KEY, value=summary)
        attach_submit_extra(context, summary, parent_id=self.mj_task_id if self.action else None)
        self._result = str(summary["id"])  # for OpenLineage, also after a deferral
        if summary.get("video_urls"):
            MidjourneyVideoLink.persist(context, summary["video_urls"][0])
        self.log.info("Midjourney task %s finished: %s", summary["id"], ", ".join(summary.get("video_urls") or []))
        return str(summary["id"])


# Re-exported here so that every operator of this provider imports from this module (``X as X``: explicit re-export).
from airflow_provider_mjvideo.operators.download import DownloadVideoOperator as DownloadVideoOperator  # noqa: E402
