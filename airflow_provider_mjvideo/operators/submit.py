"""
What every paid-submission operator does: submit once, reattach on retries, wait, confirm a MODAL, finish.

:class:`MidjourneySubmitOperator` is the base of :class:`~airflow_provider_mjvideo.operators.video.SubmitVideoOperator`
and the image operators (:mod:`airflow_provider_mjvideo.operators.image`); a subclass only says how to submit
(:meth:`MidjourneySubmitOperator.submit_task`), which fields it templates, what its wait expects and which link
it shows.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any, ClassVar

from airflow.providers.common.compat.sdk import BaseOperator, ResumableJobMixin, conf

from airflow_provider_mjvideo.connection import DEFAULT_CONN_ID
from airflow_provider_mjvideo.exceptions import MidjourneyError, MidjourneyTaskFailedError, MidjourneyWaitTimeoutError
from airflow_provider_mjvideo.lineage import submit_facets_on_complete
from airflow_provider_mjvideo.links import MidjourneyLink, MidjourneyVideoLink
from airflow_provider_mjvideo.models import TaskStatus
from airflow_provider_mjvideo.operators.base import MidjourneyHookMixin
from airflow_provider_mjvideo.routes import fetch_path
from airflow_provider_mjvideo.validation import (
    MAX_STATE_LENGTH,
    check_bool,
    check_positive_number,
    check_prompt,
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

    It is echoed back on the Midjourney task, so a job found in the server's own UI can be traced to the
    DAG run that paid for it.
    """
    ti = context["ti"]
    map_index = getattr(ti, "map_index", -1)
    suffix = f"[{map_index}]" if map_index is not None and map_index >= 0 else ""
    state = f"airflow:{ti.dag_id}/{context['run_id']}/{ti.task_id}{suffix}"
    return state[:MAX_STATE_LENGTH]


class MidjourneySubmitOperator(MidjourneyHookMixin, ResumableJobMixin, BaseOperator):
    """
    Submit one paid Midjourney job and push its task id to XCom; optionally wait for it.

    The XCom return value is the Midjourney task id (a string). With ``wait_for_completion=True`` the operator
    also waits (polling in the worker, or deferring), pushes the finished task's summary under the ``mj_task``
    XCom key, and still returns the id.

    Never paying twice (Airflow 3.3+): the submitted id is kept in the task instance's ``task_state_store``.
    A new try (after a crash, a lost worker, a timeout or any failure) looks at that task first: it reattaches
    to a task still being made, takes a finished one, and submits again only after FAILURE or CANCEL. Below
    3.3 every try submits (common-compat's stand-in).

    A task that enters ``MODAL`` (a remix waiting for a confirmation) is confirmed once with ``modal_prompt``
    (``/mj/submit/modal``), and the wait goes on for the confirmed task; without ``modal_prompt`` MODAL fails
    the task, naming the parameter.

    :param midjourney_conn_id: the Airflow connection id.
    :param wait_for_completion: wait until the job is done (implied by ``modal_prompt``).
    :param deferrable: wait in the triggerer instead of a worker slot.
    :param poll_interval: seconds between status polls while waiting.
    :param timeout: seconds to wait at most (again after a modal confirmation); then the task fails with a
        timeout and its retries apply.
    :param cancel_on_stop: cancel the remote task (best effort) when this task is killed, marked success or
        failed (or its run deleted) while deferred, or its wait times out. A cleared task keeps its video: the
        new try reattaches to it.
    :param force_new_submission: submit anew even if an earlier try of this task instance submitted a job that
        is alive or finished (templated; ``True``/``"true"``).
    :param modal_prompt: the prompt that confirms a task waiting in ``MODAL`` (templated).
    :param hook_params: keyword arguments of the hook (``retry_limit``, ``retry_delay``, ``retry_max_delay``,
        ``list_chunk_size``), also used by the trigger when the wait defers.
    :param durable: keep the submitted id in ``task_state_store`` (Airflow 3.3+); ``False`` turns reattaching off.
    """

    external_id_key = STORED_TASK_ID_KEY
    #: The subclass's submission parameters (templated, and passed to :meth:`submit_task` by name).
    submission_fields: ClassVar[tuple[str, ...]] = ()
    #: What the wait's success must carry (``video``, ``image`` or ``auto``), as the sensor's ``expect``.
    expect: ClassVar[str] = "auto"
    #: The extra link this operator stores.
    link: ClassVar[type[MidjourneyLink]] = MidjourneyVideoLink
    #: What the job is called in logs.
    job_name: ClassVar[str] = "job"
    #: The API path the submission goes to (for usage records).
    submit_route: ClassVar[str] = ""
    if TYPE_CHECKING:
        #: The ``state`` sent with the submission, for subclasses whose route takes one.
        state: str | None

    def __init__(
        self,
        *,
        midjourney_conn_id: str = DEFAULT_CONN_ID,
        wait_for_completion: bool = False,
        deferrable: bool = conf.getboolean("operators", "default_deferrable", fallback=False),
        poll_interval: float = 10.0,
        timeout: float = 3600.0,
        cancel_on_stop: bool = True,
        force_new_submission: bool | str = False,
        modal_prompt: str | None = None,
        hook_params: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self._use_connection(midjourney_conn_id, hook_params)
        self.modal_prompt = modal_prompt
        if modal_prompt is not None and not is_unresolved(modal_prompt):
            check_prompt("modal_prompt", modal_prompt)
        self.wait_for_completion = bool(wait_for_completion) or modal_prompt is not None
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

    def submission(self) -> dict[str, Any]:
        """The submission's parameters (rendered, once running), by name."""
        return {name: getattr(self, name) for name in self.submission_fields}

    def submit_task(self, context: Context) -> str:
        """Send the paid submission with :attr:`hook` and return the new task's id (subclasses)."""
        raise NotImplementedError

    def usage_action(self) -> str:
        """What a usage record calls this submission (``video``, ``extend``, ``imagine``…)."""
        return self.job_name

    def parent_task_id(self) -> str | None:
        """The task this submission is made from (an extend's video, an upscale's grid), if any."""
        return None

    def lineage_inputs(self) -> tuple[str | None, list[Any], str | None]:
        """``(prompt, input pictures, parent task id)`` for OpenLineage (subclasses extend it)."""
        return getattr(self, "prompt", None), [], self.parent_task_id()

    get_openlineage_facets_on_complete = submit_facets_on_complete

    def _record_usage(self, context: Context, mj_task_id: str, *, reattach: bool) -> None:
        # Imported on first use, like the hook: parsing a DAG file does not pay for usage and asset code.
        from airflow_provider_mjvideo.usage import record_submit

        record_submit(
            context,
            self.hook,
            self.submit_route,
            mj_task_id,
            action=self.usage_action(),
            extra_body=getattr(self, "extra_body", None),
            submitted_at=self._submitted_at,
            reattach=reattach,
        )

    def execute(self, context: Context) -> str:
        """Submit (or reattach to what an earlier try submitted); wait if asked; return the task id."""
        if "state" in self.submission_fields and getattr(self, "state", None) is None:
            self.state = default_state(context)
        if check_bool("force_new_submission", self.force_new_submission):
            store = context.get("task_state_store")
            if store is not None and store.get(STORED_TASK_ID_KEY):
                self.log.info("force_new_submission is set: not reattaching to %s", store.get(STORED_TASK_ID_KEY))
                store.delete(STORED_TASK_ID_KEY)
        return self.execute_resumable(context)

    # -- ResumableJobMixin: how to submit, look at and wait for one Midjourney task -------------------

    def submit_job(self, context: Context) -> str:
        """Submit (every parameter checked first: no request on bad input); return the Midjourney task id."""
        self._submitted_at = time.time()
        mj_task_id = self.submit_task(context)
        self._live_task_id = mj_task_id
        self._record_usage(context, mj_task_id, reattach=False)
        store = context.get("task_state_store")
        if store is not None:
            store.set(STORED_SUBMITTED_AT_KEY, self._submitted_at)
        self.link.persist(context, self.hook.settings.url(fetch_path(mj_task_id)))
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
            self._record_usage(context, str(external_id), reattach=True)
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

    def _wait_and_finish(self, mj_task_id: str, context: Context, modal_confirmed: bool = False) -> str:
        if not self.wait_for_completion:
            return mj_task_id
        while True:
            if self.deferrable:
                self._defer_wait(
                    mj_task_id,
                    poll_interval=self.poll_interval,
                    timeout=self.timeout,
                    started_at=self._submitted_at,
                    expect=self.expect,
                    method_kwargs={"modal_confirmed": modal_confirmed},
                )
            try:
                task = self.hook.wait_for_task(
                    mj_task_id,
                    poll_interval=self.poll_interval,
                    timeout=self.timeout,
                    started_at=self._submitted_at,
                    expect=self.expect,
                )
            except MidjourneyWaitTimeoutError:
                self._cancel_after_stop(mj_task_id, "its wait timed out")
                raise
            except MidjourneyTaskFailedError as err:
                if err.status != TaskStatus.MODAL.value or not self._may_confirm(modal_confirmed):
                    raise
                mj_task_id, modal_confirmed = self._confirm_modal(mj_task_id, context), True
                continue
            self._live_task_id = None
            return self._finish(context, task.to_summary())

    def execute_complete(self, context: Context, event: dict[str, Any], modal_confirmed: bool = False) -> str:
        """Resume after the trigger fired: confirm a MODAL once, fail on failure/cancel/timeout/error, or finish."""
        status = event.get("status")
        if status == WaitOutcome.MODAL.value and event.get("mj_task_id") and self._may_confirm(modal_confirmed):
            return self._wait_and_finish(self._confirm_modal(str(event["mj_task_id"]), context), context, True)
        if status == WaitOutcome.TIMEOUT.value and event.get("mj_task_id"):
            self._cancel_after_stop(str(event["mj_task_id"]), "its wait timed out")
        return self._finish(context, result_or_raise(event))

    def _may_confirm(self, modal_confirmed: bool) -> bool:
        return self.modal_prompt is not None and not modal_confirmed

    def _confirm_modal(self, mj_task_id: str, context: Context) -> str:
        """Confirm the MODAL task with ``modal_prompt`` (once); the confirmed task is what a retry reattaches to."""
        self.log.info("Midjourney task %s waits in MODAL: confirming it with modal_prompt", mj_task_id)
        confirmed = self.hook.submit_modal(mj_task_id, str(self.modal_prompt))
        self._live_task_id = confirmed
        store = context.get("task_state_store")
        if store is not None and confirmed != mj_task_id:
            store.set(STORED_TASK_ID_KEY, confirmed)
        return confirmed

    def on_kill(self) -> None:
        """Cancel the task being waited for (best effort) when the worker kills this task."""
        if self._live_task_id:
            self._cancel_after_stop(self._live_task_id, "the Airflow task was killed")

    def _finish(self, context: Context, summary: dict[str, Any]) -> str:
        from airflow_provider_mjvideo.assets import attach_submit_extra

        context["ti"].xcom_push(key=TASK_SUMMARY_XCOM_KEY, value=summary)
        attach_submit_extra(context, summary, parent_id=self.parent_task_id())
        self._result = str(summary["id"])  # for OpenLineage, also after a deferral
        results = summary.get("video_urls") if summary.get("kind") != "image" else summary.get("image_urls")
        if results:
            self.link.persist(context, results[0])
        self.log.info("Midjourney %s %s finished: %s", self.job_name, summary["id"], ", ".join(results or []))
        return str(summary["id"])
