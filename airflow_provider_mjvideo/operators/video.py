"""The operator that submits Midjourney videos (new, from a first frame or an upscale, or extends)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from airflow_provider_mjvideo.image_inputs import DEFAULT_MAX_IMAGE_BYTES
from airflow_provider_mjvideo.links import MidjourneyLink, MidjourneyVideoLink
from airflow_provider_mjvideo.operators.submit import (
    STORED_SUBMITTED_AT_KEY,
    STORED_TASK_ID_KEY,
    TASK_SUMMARY_XCOM_KEY,
    MidjourneySubmitOperator,
    default_state,
)
from airflow_provider_mjvideo.routes import SUBMIT_VIDEO_PATH
from airflow_provider_mjvideo.submissions import VIDEO_FIELDS, build_video_request
from airflow_provider_mjvideo.validation import check_positive_int

if TYPE_CHECKING:
    from airflow.providers.common.compat.sdk import Context

    from airflow_provider_mjvideo.operators.download import DownloadVideoOperator as DownloadVideoOperator

__all__ = [
    "STORED_SUBMITTED_AT_KEY",
    "STORED_TASK_ID_KEY",
    "TASK_SUMMARY_XCOM_KEY",
    "DownloadVideoOperator",
    "SubmitVideoOperator",
    "default_state",
]


class SubmitVideoOperator(MidjourneySubmitOperator):
    """
    Submit an image-to-video job (or extend a clip of an earlier video) and push the task id to XCom.

    The first frame is ``image`` (a URL, a data URI or a storage file) or the picture of a finished upscale,
    ``image_task_id=upscale.output``. Literal parameters are validated when the DAG is parsed; templated ones
    after rendering, before any request. Everything else — XComs, resuming, waiting, MODAL — is
    :class:`~airflow_provider_mjvideo.operators.submit.MidjourneySubmitOperator`'s (its parameters apply).

    :param prompt: the text prompt (templated).
    :param image: the first frame: an http(s) URL, a base64 data URI, an ``ObjectStoragePath`` or a storage URI
        (``file:///…``, ``s3://…``; read and sent as a data URI); a new video needs it or ``image_task_id``
        (templated).
    :param motion: ``"low"`` or ``"high"`` (templated).
    :param action: ``None`` for a new video, ``"extend"`` to extend a clip of ``mj_task_id`` (templated).
    :param index: which clip of the parent to extend, 0-3 (templated; ``"2"`` is sent as ``2``).
    :param mj_task_id: the parent video's task id for an extend, e.g. ``submit.output`` (templated).
    :param notify_hook: an http(s) URL the server POSTs progress to (templated).
    :param state: free text echoed on the task, at most 255 characters (templated). Default: a string
        naming the DAG, run, task and map index.
    :param extra_body: server-specific fields (``batchSize``, ``videoType``, ``loop``) (templated).
    :param image_task_id: a finished upscale (or any single-image task) whose picture is the first frame, e.g.
        ``upscale.output``; exclusive with ``image`` (templated).
    :param end_image: the last frame (``endImage``), in the forms ``image`` takes (templated).
    :param max_image_bytes: the largest storage picture read for ``image``/``end_image`` (default 10 MiB).
    """

    submission_fields: ClassVar[tuple[str, ...]] = VIDEO_FIELDS
    template_fields: Sequence[str] = (*VIDEO_FIELDS, "force_new_submission", "modal_prompt")
    template_fields_renderers = {"extra_body": "json", "prompt": "py"}
    operator_extra_links = (MidjourneyVideoLink(),)
    ui_color = "#e8d9ff"
    expect: ClassVar[str] = "video"
    link: ClassVar[type[MidjourneyLink]] = MidjourneyVideoLink
    job_name: ClassVar[str] = "video"
    submit_route: ClassVar[str] = SUBMIT_VIDEO_PATH

    def __init__(
        self,
        *,
        prompt: str,
        image: Any = None,
        motion: str = "low",
        action: str | None = None,
        index: int | str | None = None,
        mj_task_id: str | None = None,
        notify_hook: str | None = None,
        state: str | None = None,
        extra_body: dict[str, Any] | None = None,
        image_task_id: str | None = None,
        end_image: Any = None,
        max_image_bytes: int = DEFAULT_MAX_IMAGE_BYTES,
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
        self.image_task_id = image_task_id
        self.end_image = end_image
        self.max_image_bytes = check_positive_int("max_image_bytes", max_image_bytes, unit="bytes")
        # Parse-time check of whatever is literal; the hook checks the rendered values before sending.
        build_video_request(**self.submission(), allow_unresolved=True)

    def submit_task(self, context: Context) -> str:
        """Submit the video (every parameter checked, storage pictures read, before the request)."""
        return self.hook.submit_video(**self.submission(), max_image_bytes=self.max_image_bytes)

    def usage_action(self) -> str:
        """``video`` for a new video, ``extend`` for an extend."""
        return str(self.action or "video")

    def parent_task_id(self) -> str | None:
        """An extend's parent video; a video from an upscale is made from that upscale."""
        return str(self.mj_task_id) if self.action else (str(self.image_task_id) if self.image_task_id else None)

    def lineage_inputs(self) -> tuple[str | None, list[Any], str | None]:
        """The prompt, the first and last frames (as given), and the parent task."""
        end = self.end_image or (self.extra_body or {}).get("endImage")
        return self.prompt, [self.image, end], self.parent_task_id()


def __getattr__(name: str) -> Any:
    # ``DownloadVideoOperator`` is importable from here too (every operator of the provider is), but only loaded
    # when asked for: a DAG that only submits does not pay for the storage modules when it is parsed.
    if name == "DownloadVideoOperator":
        from airflow_provider_mjvideo.operators.download import DownloadVideoOperator

        return DownloadVideoOperator
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
