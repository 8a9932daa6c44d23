"""
The hook's paid submissions: a video, an imagine, a button press (an upscale among them), a modal confirm.

Every route goes through one ``_submit`` (:class:`~airflow_provider_mjvideo.hooks.midjourney.MidjourneyHook`):
the same submit codes (1/21/22 accepted, 23/30 retryable, 24 banned, 3/4 permanent,
:func:`~airflow_provider_mjvideo.responses.parse_submit`) and the same resend rule (resent only when the server
certainly did nothing). Every parameter is checked (:mod:`airflow_provider_mjvideo.submissions`) and every
storage picture read before any request.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

from airflow_provider_mjvideo.exceptions import MidjourneyValidationError
from airflow_provider_mjvideo.image_inputs import DEFAULT_MAX_IMAGE_BYTES, resolve_image_input, resolve_image_list
from airflow_provider_mjvideo.models import GRID_ACTIONS, TaskStatus
from airflow_provider_mjvideo.routes import (
    SUBMIT_ACTION_PATH,
    SUBMIT_IMAGINE_PATH,
    SUBMIT_MODAL_PATH,
    SUBMIT_VIDEO_PATH,
)
from airflow_provider_mjvideo.submissions import (
    build_action_request,
    build_imagine_request,
    build_modal_request,
    build_video_request,
)
from airflow_provider_mjvideo.validation import check_index, check_positive_int, check_task_id

if TYPE_CHECKING:
    from airflow_provider_mjvideo.models import MidjourneyTask


class MidjourneySubmitMixin:
    """The submission methods of :class:`~airflow_provider_mjvideo.hooks.midjourney.MidjourneyHook`."""

    if TYPE_CHECKING:

        def _submit(self, path: str, body: dict[str, Any], what: str) -> str: ...

        def get_task(self, mj_task_id: str) -> MidjourneyTask: ...

    def submit_video(
        self,
        prompt: str,
        image: Any = None,
        motion: str = "low",
        *,
        action: str | None = None,
        index: int | str | None = None,
        mj_task_id: str | None = None,
        notify_hook: str | None = None,
        state: str | None = None,
        extra_body: dict[str, Any] | None = None,
        image_task_id: str | None = None,
        end_image: Any = None,
        max_image_bytes: int = DEFAULT_MAX_IMAGE_BYTES,
    ) -> str:
        """
        Submit an image-to-video job, or an extend of one clip of an earlier video; return the task id.

        Everything is checked before any request is sent; storage pictures are read then (streamed, capped).

        :param prompt: the text prompt (required, also for extends).
        :param image: the first frame: an http(s) URL, a base64 data URI, an ``ObjectStoragePath`` or a storage
            URI (``file:///…``, ``s3://…``; an absolute path means ``file://``), sent as a data URI.
        :param motion: ``"low"`` or ``"high"``.
        :param action: ``None`` for a new video or ``"extend"``.
        :param index: the parent's clip to extend, 0-3 (``"2"`` accepted, sent as ``2``).
        :param mj_task_id: the parent video's task id, for ``action="extend"`` (sent as ``taskId``).
        :param notify_hook: an http(s) URL the server POSTs progress to.
        :param state: free text echoed back on the task (at most 255 characters).
        :param extra_body: server-specific fields such as ``batchSize``, ``videoType``, ``loop``.
        :param image_task_id: a finished upscale (or any single-image task): its picture is the first frame
            (exclusive with ``image``).
        :param end_image: the last frame (``endImage``), in the forms ``image`` takes.
        :param max_image_bytes: the largest storage picture read, in bytes (default 10 MiB).
        :raises MidjourneyValidationError: a bad parameter (no request sent).
        :raises MidjourneySubmitOutcomeUnknownError: the server may have accepted the job; not resent.
        """
        video = build_video_request(
            prompt,
            image,
            motion,
            action=action,
            index=index,
            mj_task_id=mj_task_id,
            notify_hook=notify_hook,
            state=state,
            extra_body=extra_body,
            image_task_id=image_task_id,
            end_image=end_image,
        )
        assert video is not None  # every argument is a concrete value here
        max_bytes = check_positive_int("max_image_bytes", max_image_bytes, unit="bytes")
        video = dataclasses.replace(
            video,
            image=None if video.image is None else resolve_image_input("image", video.image, max_bytes=max_bytes),
            end_image=None
            if video.end_image is None
            else resolve_image_input("end_image", video.end_image, max_bytes=max_bytes),
        )
        if video.image_task_id is not None:
            video = dataclasses.replace(video, image=self.first_frame_of(video.image_task_id))
        what = "video extend submission" if video.action else "video submission"
        return self._submit(SUBMIT_VIDEO_PATH, video.to_body(), what)

    def first_frame_of(self, image_task_id: str) -> str:
        """
        The picture of a finished single-image task (an upscale), to animate.

        :param image_task_id: the task.
        :raises MidjourneyValidationError: the task is not finished, has no picture, or is a grid of four.
        """
        task = self.get_task(image_task_id)
        if task.status is not TaskStatus.SUCCESS or not task.image_url:
            raise MidjourneyValidationError(
                "image_task_id",
                f"task {task.id} is {task.status.value} without a picture yet: wait for it before animating it",
            )
        if task.action in GRID_ACTIONS:
            raise MidjourneyValidationError(
                "image_task_id",
                f"task {task.id} is a grid of four images ({task.action.value}): upscale one first "
                "(UpscaleImageOperator) and animate the upscale",
            )
        return task.image_url

    def submit_imagine(
        self,
        prompt: str,
        *,
        images: Any = None,
        bot_type: str | None = None,
        notify_hook: str | None = None,
        state: str | None = None,
        extra_body: dict[str, Any] | None = None,
        max_image_bytes: int = DEFAULT_MAX_IMAGE_BYTES,
    ) -> str:
        """
        Submit an imagine (``POST /mj/submit/imagine``): a 2x2 grid of images from a prompt; return the task id.

        :param prompt: the text prompt.
        :param images: image prompts: http(s) URLs (put in front of the prompt, as Midjourney reads them),
            base64 data URIs or storage files (sent in ``base64Array``).
        :param bot_type: ``"MID_JOURNEY"`` or ``"NIJI_JOURNEY"``; ``None`` for the server's default.
        :param notify_hook: an http(s) URL the server POSTs progress to.
        :param state: free text echoed back on the task (at most 255 characters).
        :param extra_body: server-specific fields.
        :param max_image_bytes: the largest storage picture read, in bytes (default 10 MiB).
        :raises MidjourneyValidationError: a bad parameter (no request sent).
        :raises MidjourneySubmitOutcomeUnknownError: the server may have accepted the job; not resent.
        """
        imagine = build_imagine_request(
            prompt, images=images, bot_type=bot_type, notify_hook=notify_hook, state=state, extra_body=extra_body
        )
        assert imagine is not None
        max_bytes = check_positive_int("max_image_bytes", max_image_bytes, unit="bytes")
        imagine = dataclasses.replace(
            imagine, images=tuple(resolve_image_list("images", imagine.images, max_bytes=max_bytes))
        )
        return self._submit(SUBMIT_IMAGINE_PATH, imagine.to_body(), "imagine submission")

    def submit_action(
        self,
        mj_task_id: str,
        custom_id: str,
        *,
        notify_hook: str | None = None,
        state: str | None = None,
        extra_body: dict[str, Any] | None = None,
    ) -> str:
        """
        Press a button of a finished task (``POST /mj/submit/action``); return the new task's id.

        :param mj_task_id: the finished task.
        :param custom_id: the button's custom id (see :meth:`MidjourneyTask.button` to find it by label).
        :param notify_hook: an http(s) URL the server POSTs progress to.
        :param state: free text echoed back on the new task (at most 255 characters).
        :param extra_body: server-specific fields (trueai: ``enableRemix``, ``strong``).
        :raises MidjourneyValidationError: a bad parameter (no request sent).
        :raises MidjourneySubmitOutcomeUnknownError: the server may have accepted the job; not resent.
        """
        press = build_action_request(mj_task_id, custom_id, notify_hook=notify_hook, state=state, extra_body=extra_body)
        return self._submit(SUBMIT_ACTION_PATH, press.to_body(), f"action {press.custom_id} on task {press.mj_task_id}")

    def upscale(
        self, mj_task_id: str, index: int | str, *, notify_hook: str | None = None, state: str | None = None
    ) -> str:
        """
        Upscale one image of a finished grid: press its ``MJ::JOB::upsample::<index+1>::…`` button.

        ``index`` is 0-based like a video extend's: 0 is Midjourney's U1, 3 its U4.

        :param mj_task_id: the finished imagine (or variation, reroll…) task.
        :param index: which image of the grid, 0-3.
        :param notify_hook: an http(s) URL the server POSTs progress to.
        :param state: free text echoed back on the upscale task (at most 255 characters).
        :raises MidjourneyValidationError: a bad index (no request), or a task without that button (one fetch).
        :returns: the upscale task's id.
        """
        grid_index = check_index("index", index, "which image of the grid: 0 is U1")
        button = self.get_task(check_task_id("mj_task_id", mj_task_id)).upscale_button(grid_index)
        return self.submit_action(mj_task_id, button.custom_id, notify_hook=notify_hook, state=state)

    def submit_modal(self, mj_task_id: str, prompt: str, *, extra_body: dict[str, Any] | None = None) -> str:
        """
        Confirm a task waiting in ``MODAL`` (remix, some animate paths) with a prompt; return the confirmed task's id.

        :param mj_task_id: the task in ``MODAL``.
        :param prompt: the prompt to confirm it with.
        :param extra_body: server-specific fields.
        :raises MidjourneyValidationError: a bad parameter (no request sent).
        """
        modal = build_modal_request(mj_task_id, prompt, extra_body=extra_body)
        return self._submit(SUBMIT_MODAL_PATH, modal.to_body(), f"modal confirmation of task {modal.mj_task_id}")
