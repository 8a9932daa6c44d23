"""
A person picks the clip a DAG goes on with: :class:`ChooseClipOperator`, on the standard provider's ``HITLOperator``.

Needs Airflow 3.1+ (the human-in-the-loop operators); below that, importing this module raises
``AirflowOptionalProviderFeatureException`` saying so, and the rest of the provider works as before.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Final

from airflow.providers.common.compat.sdk import AirflowOptionalProviderFeatureException, conf

from airflow_provider_mjvideo.versions import needs_airflow_3_1

if _UNAVAILABLE := needs_airflow_3_1("ChooseClipOperator (human-in-the-loop review)"):
    raise AirflowOptionalProviderFeatureException(_UNAVAILABLE)

from airflow.providers.standard.operators.hitl import HITLOperator

from airflow_provider_mjvideo.connection import DEFAULT_CONN_ID
from airflow_provider_mjvideo.exceptions import MidjourneyValidationError
from airflow_provider_mjvideo.operators.base import MidjourneyHookMixin
from airflow_provider_mjvideo.operators.video import TASK_SUMMARY_XCOM_KEY
from airflow_provider_mjvideo.ui import paths
from airflow_provider_mjvideo.validation import (
    MAX_INDEX,
    check_indexes,
    check_positive_number,
    check_task_id,
    is_unresolved,
)

if TYPE_CHECKING:
    from airflow.providers.common.compat.sdk import Context

    from airflow_provider_mjvideo.models import MidjourneyTask

#: The subject when none is given.
DEFAULT_SUBJECT: Final = "Which Midjourney clip goes on?"
_OPTION_PREFIX: Final = "clip "
_MARKDOWN_SPECIALS: Final = "\\`*_{}[]()#+-.!|<>"


def clip_option(index: int) -> str:
    """The option a person sees for clip ``index``: ``"clip 2"``."""
    return f"{_OPTION_PREFIX}{index}"


def option_index(option: str) -> int:
    """
    The clip index an option names (``"clip 2"`` → ``2``).

    :raises MidjourneyValidationError: not an option of this operator, or a clip outside 0-3.
    """
    text = str(option)
    if not text.startswith(_OPTION_PREFIX):
        raise MidjourneyValidationError("chosen option", f"{text!r:.40} is not one of clip 0 … clip {MAX_INDEX}")
    checked = check_indexes(text[len(_OPTION_PREFIX) :], name="chosen option")
    if checked is None or len(checked) != 1:
        raise MidjourneyValidationError("chosen option", f"{text!r:.40} is not one of clip 0 … clip {MAX_INDEX}")
    return checked[0]


def _markdown_text(text: str) -> str:
    return "".join(f"\\{char}" if char in _MARKDOWN_SPECIALS else char for char in text)


class ChooseClipOperator(MidjourneyHookMixin, HITLOperator):
    """
    Ask a person which clip of a finished Midjourney video the DAG goes on with, in the Airflow UI.

    The task fetches the video (no request is paid), offers its clips as options ``clip 0`` … ``clip 3`` (only
    those the task has), with the prompt and a link to each clip and to the Midjourney view, then waits for the
    answer in the task instance's "Required actions" (or the ``hitlDetails`` REST API). It pushes the video's
    summary under the ``mj_task`` XCom key, so the Midjourney view's tab of this task instance shows the clips.

    **XCom return value:** the chosen clip index (an int), or a list of them with ``multiple=True``: ready for
    ``index=`` of the next extend or ``indexes=`` of a download.

    :param mj_task_id: the finished video, usually ``<submit>.output``; a sensor's summary works too (templated).
    :param subject: the question's headline (templated; default :data:`DEFAULT_SUBJECT`).
    :param body: the question's Markdown (templated); default: the prompt and a link to every clip.
    :param defaults: the clip index (or indexes, with ``multiple``) a timeout chooses; ``None``: a timeout fails.
    :param multiple: let the person choose several clips; the result is then a list.
    :param timeout: seconds (or a ``timedelta``) to wait for the answer; ``None`` waits for ever.
    :param midjourney_conn_id: the Midjourney connection the video is fetched with.
    :param hook_params: keyword arguments of the hook that fetches the video (``retry_limit``…).
    :param kwargs: the rest of ``HITLOperator``'s and ``BaseOperator``'s parameters (``assigned_users``,
        ``notifiers``…); ``options`` and ``response_timeout`` are this operator's own business.
    """

    template_fields: Sequence[str] = (*HITLOperator.template_fields, "mj_task_id")
    ui_color = "#fde7c8"

    def __init__(
        self,
        *,
        mj_task_id: str | Mapping[str, Any],
        subject: str | None = None,
        body: str | None = None,
        defaults: int | list[int] | None = None,
        multiple: bool = False,
        timeout: float | timedelta | None = None,
        midjourney_conn_id: str = DEFAULT_CONN_ID,
        hook_params: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        for own in ("options", "response_timeout"):
            if own in kwargs:
                raise MidjourneyValidationError(own, "is set by ChooseClipOperator (use defaults and timeout)")
        chosen_by_default = check_indexes(defaults, name="defaults")
        if chosen_by_default and not multiple and len(chosen_by_default) > 1:
            raise MidjourneyValidationError("defaults", f"one clip without multiple=True, got {chosen_by_default}")
        if isinstance(timeout, timedelta):
            timeout = timeout.total_seconds()
        seconds = check_positive_number("timeout", timeout, allow_none=True)
        super().__init__(
            subject=subject or DEFAULT_SUBJECT,
            options=[clip_option(index) for index in range(MAX_INDEX + 1)],
            body=body,
            defaults=[clip_option(index) for index in chosen_by_default] if chosen_by_default else None,
            multiple=multiple,
            response_timeout=timedelta(seconds=seconds) if seconds is not None else None,
            **kwargs,
        )
        self._use_connection(midjourney_conn_id, hook_params)
        self.mj_task_id = mj_task_id
        if not is_unresolved(mj_task_id) and not isinstance(mj_task_id, Mapping):
            check_task_id("mj_task_id", mj_task_id)

    def _rendered_task_id(self) -> str:
        raw = self.mj_task_id
        if isinstance(raw, Mapping) and "id" in raw:  # a MidjourneyTaskSensor's summary
            raw = raw["id"]
        return check_task_id("mj_task_id", raw)

    def execute(self, context: Context) -> Any:
        """Fetch the video, offer its clips, and wait for the person's answer (``execute_complete`` resumes)."""
        mj_task_id = self._rendered_task_id()
        try:
            task = self.hook.get_task(mj_task_id)
        finally:
            self.hook.close()
        urls = task.finished_clips("to choose from")[: MAX_INDEX + 1]
        self.options = [clip_option(index) for index in range(len(urls))]
        if self.defaults and not set(self.defaults) <= set(self.options):
            raise MidjourneyValidationError(
                "defaults", f"chooses {', '.join(self.defaults)}, but task {task.id} has {len(urls)} clip(s)"
            )
        if self.body is None:
            self.body = self._default_body(context, task, urls)
        context["ti"].xcom_push(key=TASK_SUMMARY_XCOM_KEY, value=task.to_summary())
        self.log.info("Asking which clip of Midjourney task %s goes on: %s", task.id, ", ".join(self.options))
        return super().execute(context)

    def _default_body(self, context: Context, task: MidjourneyTask, urls: Sequence[str]) -> str:
        ti = context["ti"]
        base = (conf.get("api", "base_url", fallback="") or "").rstrip("/")
        page = paths.APP_ROOT + paths.task_instance_page(
            ti.dag_id, ti.run_id, ti.task_id, ti.map_index if ti.map_index is not None else -1
        )
        view = f"{base}/{page}" if base else page
        lines = [
            f"**Prompt:** {_markdown_text(task.prompt or '(none recorded)')}",
            "",
            f"Midjourney task `{task.id}` made {len(urls)} clip(s):",
            "",
            *(f"- **{clip_option(index)}**: [watch it on the server]({url})" for index, url in enumerate(urls)),
            "",
            "The server's links expire after a while. The clips, and every saved one of this run, are also in "
            f"the [Midjourney view]({view}).",
        ]
        return "\n".join(lines)

    def execute_complete(self, context: Context, event: dict[str, Any]) -> int | list[int]:
        """The chosen clip index (a list with ``multiple``), checked against the clips the video has."""
        answer = super().execute_complete(context, event)
        chosen = [option_index(option) for option in answer["chosen_options"]]
        if not chosen:
            raise MidjourneyValidationError("chosen option", "no clip was chosen")
        ti = context["ti"]
        summary = ti.xcom_pull(task_ids=self.task_id, key=TASK_SUMMARY_XCOM_KEY, map_indexes=ti.map_index)
        if isinstance(summary, Mapping) and isinstance(summary.get("video_urls"), list):
            count = len(summary["video_urls"])
            if outside := [index for index in chosen if index >= count]:
                raise MidjourneyValidationError(
                    "chosen option", f"task {summary.get('id')} has {count} clip(s), there is no clip {outside[0]}"
                )
        who = (answer.get("responded_by_user") or {}).get("name") or "the timeout's defaults"
        self.log.info("Clip(s) %s chosen by %s", ", ".join(map(str, chosen)), who)
        return chosen if self.multiple else chosen[0]
