"""
Operators for Midjourney's pictures: imagine a grid from a prompt, upscale one of its images, press any button.

Each is a :class:`~airflow_provider_mjvideo.operators.submit.MidjourneySubmitOperator`: the XCom return value is
the new task's id, ``wait_for_completion``/``deferrable`` wait for it, a retry reattaches instead of paying again,
and ``modal_prompt`` confirms a task that waits in ``MODAL``. Animate an upscale with
``SubmitVideoOperator(image_task_id=upscale.output, …)``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from airflow_provider_mjvideo.exceptions import MidjourneyValidationError
from airflow_provider_mjvideo.image_inputs import DEFAULT_MAX_IMAGE_BYTES
from airflow_provider_mjvideo.links import MidjourneyImageLink, MidjourneyLink
from airflow_provider_mjvideo.operators.submit import MidjourneySubmitOperator
from airflow_provider_mjvideo.routes import SUBMIT_ACTION_PATH, SUBMIT_IMAGINE_PATH
from airflow_provider_mjvideo.submissions import IMAGINE_FIELDS, build_imagine_request
from airflow_provider_mjvideo.validation import (
    check_http_url,
    check_index,
    check_positive_int,
    check_state,
    check_task_id,
    is_unresolved,
)

if TYPE_CHECKING:
    from airflow.providers.common.compat.sdk import Context

__all__ = ["SubmitActionOperator", "SubmitImagineOperator", "UpscaleImageOperator"]


def _check_literals(**values: Any) -> None:
    """Parse-time checks of the literal task id, hook and state of a button press."""
    if not is_unresolved(values["mj_task_id"]):
        check_task_id("mj_task_id", values["mj_task_id"])
    if values["notify_hook"] is not None and not is_unresolved(values["notify_hook"]):
        check_http_url("notify_hook", values["notify_hook"])
    if values["state"] is not None and not is_unresolved(values["state"]):
        check_state("state", values["state"])


class SubmitImagineOperator(MidjourneySubmitOperator):
    """
    Imagine (``POST /mj/submit/imagine``): a 2x2 grid of four images from a prompt; push the task id to XCom.

    :param prompt: the text prompt (templated).
    :param images: image prompts: http(s) URLs (put in front of the prompt), base64 data URIs, ``ObjectStoragePath``
        values or storage URIs (read and sent in ``base64Array``) (templated).
    :param bot_type: ``"MID_JOURNEY"`` or ``"NIJI_JOURNEY"``; ``None`` for the server's default (templated).
    :param notify_hook: an http(s) URL the server POSTs progress to (templated).
    :param state: free text echoed on the task, at most 255 characters (templated; default names the task
        instance).
    :param extra_body: server-specific fields (templated).
    :param max_image_bytes: the largest storage picture read for ``images`` (default 10 MiB).
    """

    submission_fields: ClassVar[tuple[str, ...]] = IMAGINE_FIELDS
    template_fields: Sequence[str] = (*IMAGINE_FIELDS, "force_new_submission", "modal_prompt")
    template_fields_renderers = {"extra_body": "json", "prompt": "py"}
    operator_extra_links = (MidjourneyImageLink(),)
    ui_color = "#ffe0c2"
    expect: ClassVar[str] = "image"
    link: ClassVar[type[MidjourneyLink]] = MidjourneyImageLink
    job_name: ClassVar[str] = "imagine"
    submit_route: ClassVar[str] = SUBMIT_IMAGINE_PATH

    def __init__(
        self,
        *,
        prompt: str,
        images: Any = None,
        bot_type: str | None = None,
        notify_hook: str | None = None,
        state: str | None = None,
        extra_body: dict[str, Any] | None = None,
        max_image_bytes: int = DEFAULT_MAX_IMAGE_BYTES,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.prompt = prompt
        self.images = images
        self.bot_type = bot_type
        self.notify_hook = notify_hook
        self.state = state
        self.extra_body = extra_body
        self.max_image_bytes = check_positive_int("max_image_bytes", max_image_bytes, unit="bytes")
        build_imagine_request(**self.submission(), allow_unresolved=True)

    def submit_task(self, context: Context) -> str:
        """Submit the imagine (every parameter checked, storage pictures read, before the request)."""
        return self.hook.submit_imagine(**self.submission(), max_image_bytes=self.max_image_bytes)

    def lineage_inputs(self) -> tuple[str | None, list[Any], str | None]:
        """The prompt and its image prompts (as given)."""
        images = self.images if isinstance(self.images, (list, tuple)) else [self.images]
        return self.prompt, [image for image in images if isinstance(image, str)], None


class UpscaleImageOperator(MidjourneySubmitOperator):
    """
    Upscale one image of a finished grid (its ``U<index+1>`` button); push the upscale task's id to XCom.

    ``index`` is 0-based like a video extend's: 0 is Midjourney's U1, 3 its U4.

    :param mj_task_id: the finished imagine (or variation, reroll…) task, e.g. ``imagine.output`` (templated).
    :param index: which image of the grid, 0-3 (templated; ``"2"`` works).
    :param notify_hook: an http(s) URL the server POSTs progress to (templated).
    :param state: free text echoed on the task (templated; default names the task instance).
    """

    submission_fields: ClassVar[tuple[str, ...]] = ("mj_task_id", "index", "notify_hook", "state")
    template_fields: Sequence[str] = (*submission_fields, "force_new_submission", "modal_prompt")
    operator_extra_links = (MidjourneyImageLink(),)
    ui_color = "#ffd1a6"
    expect: ClassVar[str] = "image"
    link: ClassVar[type[MidjourneyLink]] = MidjourneyImageLink
    job_name: ClassVar[str] = "upscale"
    submit_route: ClassVar[str] = SUBMIT_ACTION_PATH

    def __init__(
        self,
        *,
        mj_task_id: str,
        index: int | str,
        notify_hook: str | None = None,
        state: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.mj_task_id = mj_task_id
        self.index = index
        self.notify_hook = notify_hook
        self.state = state
        _check_literals(mj_task_id=mj_task_id, notify_hook=notify_hook, state=state)
        if not is_unresolved(index):
            check_index("index", index, "which image of the grid: 0 is U1")

    def submit_task(self, context: Context) -> str:
        """Find the grid's upscale button for ``index`` (one fetch) and press it."""
        return self.hook.upscale(**self.submission())

    def parent_task_id(self) -> str | None:
        """The grid this upscale is made from."""
        return str(self.mj_task_id)


class SubmitActionOperator(MidjourneySubmitOperator):
    """
    Press any button of a finished task (``POST /mj/submit/action``); push the new task's id to XCom.

    The task is fetched first and the button found by label (``"U2"``, ``"V1"``), emoji (``"🔄"``) or full
    custom id; an unknown button fails with the list of the task's buttons, before any submission. What the
    wait expects comes from the new task's action (an Animate button makes a video, an upscale a picture).

    :param mj_task_id: the finished task, e.g. ``imagine.output`` (templated).
    :param button: a button's label, emoji or custom id (templated).
    :param notify_hook: an http(s) URL the server POSTs progress to (templated).
    :param state: free text echoed on the task (templated; default names the task instance).
    :param extra_body: server-specific fields (trueai: ``enableRemix``, ``strong``) (templated).
    """

    submission_fields: ClassVar[tuple[str, ...]] = ("mj_task_id", "button", "notify_hook", "state", "extra_body")
    template_fields: Sequence[str] = (*submission_fields, "force_new_submission", "modal_prompt")
    template_fields_renderers = {"extra_body": "json"}
    operator_extra_links = (MidjourneyImageLink(),)
    ui_color = "#ffd1a6"
    link: ClassVar[type[MidjourneyLink]] = MidjourneyImageLink
    job_name: ClassVar[str] = "action"
    submit_route: ClassVar[str] = SUBMIT_ACTION_PATH

    def __init__(
        self,
        *,
        mj_task_id: str,
        button: str,
        notify_hook: str | None = None,
        state: str | None = None,
        extra_body: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.mj_task_id = mj_task_id
        self.button = button
        self.notify_hook = notify_hook
        self.state = state
        self.extra_body = extra_body
        _check_literals(mj_task_id=mj_task_id, notify_hook=notify_hook, state=state)
        if not is_unresolved(button) and (not isinstance(button, str) or not button.strip()):
            raise MidjourneyValidationError("button", f"must be a button's label, emoji or custom id, got {button!r}")

    def submit_task(self, context: Context) -> str:
        """Fetch the task, find the button (a clear error listing the buttons if absent), press it."""
        task = self.hook.get_task(check_task_id("mj_task_id", self.mj_task_id))
        pressed = task.button(str(self.button))
        self.log.info("Pressing %s (%s) of Midjourney task %s", pressed.name, pressed.custom_id, task.id)
        return self.hook.submit_action(
            task.id, pressed.custom_id, notify_hook=self.notify_hook, state=self.state, extra_body=self.extra_body
        )

    def parent_task_id(self) -> str | None:
        """The task whose button was pressed."""
        return str(self.mj_task_id)
