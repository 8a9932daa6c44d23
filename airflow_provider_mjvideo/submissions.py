"""
The body of every paid submission, checked and normalised before any request: video, imagine, action, modal.

Each ``build_*_request`` checks its parameters with :mod:`airflow_provider_mjvideo.validation` and returns a
frozen request whose ``to_body()`` is what the route's servers read. Operators call the same builders at DAG
parse time with ``allow_unresolved=True``: values only known after templating (Jinja strings, XComArgs) are
skipped with the rules that depend on them, and ``None`` is returned once everything known is valid.

Pictures (``image``, ``end_image``, ``images``) may be storage references; they are checked for their form
here and read only at run time, by the hook (:mod:`airflow_provider_mjvideo.image_inputs`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from airflow_provider_mjvideo.exceptions import MidjourneyValidationError
from airflow_provider_mjvideo.image_inputs import check_image_input, check_image_list
from airflow_provider_mjvideo.validation import (
    UNRESOLVED,
    check_http_url,
    check_index,
    check_prompt,
    check_state,
    check_task_id,
    is_unresolved,
)

MOTIONS: Final = ("low", "high")
ACTIONS: Final = ("extend",)
BOT_TYPES: Final = ("MID_JOURNEY", "NIJI_JOURNEY")
_BATCH_SIZES: Final = (1, 2, 4)

#: The parameters of each submission, in its builder's order (the operators template and pass them by name).
VIDEO_FIELDS: Final = (
    "prompt",
    "image",
    "motion",
    "action",
    "index",
    "mj_task_id",
    "notify_hook",
    "state",
    "extra_body",
    "image_task_id",
    "end_image",
)
IMAGINE_FIELDS: Final = ("prompt", "images", "bot_type", "notify_hook", "state", "extra_body")

#: Body keys each route's builder sets itself; ``extra_body`` may not override them.
VIDEO_BODY_KEYS: Final = frozenset(
    {"prompt", "image", "motion", "action", "index", "taskId", "task_id", "notifyHook", "state"}
)
IMAGINE_BODY_KEYS: Final = frozenset({"prompt", "base64Array", "botType", "notifyHook", "state"})
ACTION_BODY_KEYS: Final = frozenset({"taskId", "customId", "notifyHook", "state"})
MODAL_BODY_KEYS: Final = frozenset({"taskId", "prompt", "maskBase64"})


def _is_http(value: Any) -> bool:
    """Whether a picture value is an http(s) URL (after the hook read stored files, the rest are data URIs)."""
    return isinstance(value, str) and value.strip().lower().startswith(("http://", "https://"))


def _picture(name: str, value: Any, allow_unresolved: bool) -> Any:
    """The checked picture value (stripped URL or data URI, storage URI or path), ``UNRESOLVED`` if templated."""
    checked = check_image_input(name, value, allow_unresolved=allow_unresolved)
    return UNRESOLVED if checked is None else checked.value


class _Known:
    """At parse time, skips values that templating supplies later and remembers that the request is incomplete."""

    def __init__(self, allow_unresolved: bool) -> None:
        self.allow_unresolved = allow_unresolved
        self.complete = True

    def __call__(self, value: Any) -> bool:
        if self.allow_unresolved and is_unresolved(value):
            self.complete = False
            return False
        return True


def check_extra_body(extra_body: Any, core_keys: frozenset[str]) -> dict[str, Any]:
    """
    Return ``extra_body`` as a dict of server-specific fields that do not clash with ``core_keys``.

    :param extra_body: a mapping, or ``None``.
    :param core_keys: the keys the route's builder sets itself.
    :raises MidjourneyValidationError: naming ``extra_body``.
    """
    if extra_body is None:
        return {}
    if not isinstance(extra_body, Mapping):
        raise MidjourneyValidationError("extra_body", f"must be a dict, got {type(extra_body).__name__}")
    clash = sorted(core_keys.intersection(extra_body))
    if clash:
        raise MidjourneyValidationError(
            "extra_body", f"may not set {', '.join(clash)}: use the dedicated parameters instead"
        )
    if "batchSize" in extra_body and extra_body["batchSize"] not in _BATCH_SIZES:
        raise MidjourneyValidationError("extra_body", f"batchSize must be 1, 2 or 4, got {extra_body['batchSize']!r}")
    if "loop" in extra_body and not isinstance(extra_body["loop"], bool):
        raise MidjourneyValidationError("extra_body", f"loop must be true or false, got {extra_body['loop']!r}")
    if "endImage" in extra_body:
        check_http_url("extra_body.endImage", extra_body["endImage"], allow_data_uri=True)
    try:
        json.dumps(dict(extra_body))
    except (TypeError, ValueError) as err:
        raise MidjourneyValidationError("extra_body", f"must be JSON-serialisable: {err}") from None
    return dict(extra_body)


def _common_body(body: dict[str, Any], notify_hook: str | None, state: str | None, extra: Any) -> dict[str, Any]:
    if notify_hook:
        body["notifyHook"] = notify_hook
    if state is not None:
        body["state"] = state
    body.update(extra or {})
    return body


# ------------------------------------------------------------------------------------------ video


@dataclass(frozen=True)
class VideoRequest:
    """
    A checked ``POST /mj/submit/video`` request.

    ``image`` and ``end_image`` may still be storage references (the hook reads them before sending), and
    ``image_task_id`` names the finished image task whose picture is the first frame (the hook fetches it).
    """

    prompt: str
    motion: str
    image: Any = None
    action: str | None = None
    index: int | None = None
    mj_task_id: str | None = None
    notify_hook: str | None = None
    state: str | None = None
    extra_body: Mapping[str, Any] | None = None
    image_task_id: str | None = None
    end_image: Any = None

    def to_body(self) -> dict[str, Any]:
        """The JSON body as servers read it: the parent as ``taskId`` (and ``task_id``), ``index`` an int."""
        body: dict[str, Any] = {"prompt": self.prompt, "motion": self.motion}
        if self.image:
            body["image"] = self.image
        if self.end_image:
            body["endImage"] = self.end_image
        if self.action:
            body["action"] = self.action
        if self.mj_task_id is not None:
            body["taskId"] = self.mj_task_id
            body["task_id"] = self.mj_task_id
        if self.index is not None:
            body["index"] = self.index
        return _common_body(body, self.notify_hook, self.state, self.extra_body)


def build_video_request(
    prompt: Any,
    image: Any = None,
    motion: Any = "low",
    *,
    action: Any = None,
    index: Any = None,
    mj_task_id: Any = None,
    notify_hook: Any = None,
    state: Any = None,
    extra_body: Any = None,
    image_task_id: Any = None,
    end_image: Any = None,
    allow_unresolved: bool = False,
) -> VideoRequest | None:
    """
    Check the parameters of a video submission and return the normalised request.

    :param prompt: the text prompt; must not be empty.
    :param image: the first frame: an http(s) URL, a base64 data URI, or a storage file; a new video needs it
        or ``image_task_id``.
    :param motion: ``"low"`` or ``"high"``.
    :param action: ``None`` for a new video, or ``"extend"``.
    :param index: which clip of the parent to extend, 0-3 (``"2"`` is accepted and sent as ``2``).
    :param mj_task_id: the parent task id for ``action="extend"``.
    :param notify_hook: an http(s) URL the server calls back on progress.
    :param state: free text echoed back on the task, at most 255 characters.
    :param extra_body: server-specific extras (``batchSize``, ``videoType``, ``loop``…).
    :param image_task_id: a finished upscale (or any single-image task) whose picture is the first frame;
        exclusive with ``image``.
    :param end_image: the last frame (sent as ``endImage``), in the forms ``image`` takes.
    :param allow_unresolved: skip values only known after rendering instead of rejecting them.
    :raises MidjourneyValidationError: naming the first invalid parameter.
    """
    known = _Known(allow_unresolved)
    if known(prompt):
        prompt = check_prompt("prompt", prompt)
    if known(motion) and motion not in MOTIONS:
        raise MidjourneyValidationError("motion", f"must be 'low' or 'high', got {motion!r:.40}")
    if known(action) and action is not None and action not in ACTIONS:
        raise MidjourneyValidationError("action", f"must be None (new video) or 'extend', got {action!r:.40}")
    extending = action == "extend"

    if known(image) and image is not None:
        image = _picture("image", image, allow_unresolved)
    if known(image_task_id) and image_task_id is not None:
        image_task_id = check_task_id("image_task_id", image_task_id)
        if image is not None and not is_unresolved(image):
            raise MidjourneyValidationError("image_task_id", "and image are exclusive: give the first frame once")
    if known(end_image) and end_image is not None:
        end_image = _picture("end_image", end_image, allow_unresolved)
    if known(action) and not extending and image is None and image_task_id is None:
        raise MidjourneyValidationError(
            "image", "is required for a new video (or image_task_id; only an extend may omit both)"
        )

    if known(index) and index is not None:
        index = check_index("index", index, "which clip of the parent to extend")
    if known(mj_task_id) and mj_task_id is not None:
        mj_task_id = check_task_id("mj_task_id", mj_task_id)
    if extending:
        if mj_task_id is None:
            raise MidjourneyValidationError("mj_task_id", "is required with action='extend' (the parent video)")
        if index is None:
            raise MidjourneyValidationError("index", "is required with action='extend' (which clip of the parent, 0-3)")
    elif known(action):
        if mj_task_id is not None:
            raise MidjourneyValidationError("mj_task_id", "is only used with action='extend'")
        if index is not None:
            raise MidjourneyValidationError("index", "is only used with action='extend'")

    if known(notify_hook) and notify_hook is not None:
        notify_hook = check_http_url("notify_hook", notify_hook)
    if known(state) and state is not None:
        state = check_state("state", state)
    if known(extra_body):
        extra_body = check_extra_body(extra_body, VIDEO_BODY_KEYS)
        if end_image is not None and "endImage" in extra_body:
            raise MidjourneyValidationError("extra_body", "may not set endImage: use the end_image parameter")

    if not known.complete:
        return None
    return VideoRequest(
        prompt=prompt,
        motion=motion,
        image=image,
        action=action,
        index=index,
        mj_task_id=mj_task_id,
        notify_hook=notify_hook,
        state=state,
        extra_body=extra_body or None,
        image_task_id=image_task_id,
        end_image=end_image,
    )


# ------------------------------------------------------------------------------------------ imagine


@dataclass(frozen=True)
class ImagineRequest:
    """
    A checked ``POST /mj/submit/imagine`` request.

    Image prompts given as http(s) URLs go in front of the prompt text (Midjourney reads image URLs there);
    data URIs and storage files go in ``base64Array`` (storage files are read by the hook before sending).
    """

    prompt: str
    images: tuple[Any, ...] = ()
    bot_type: str | None = None
    notify_hook: str | None = None
    state: str | None = None
    extra_body: Mapping[str, Any] | None = None

    def to_body(self) -> dict[str, Any]:
        """The JSON body as servers read it (every storage image must have been read into a data URI)."""
        urls = [image for image in self.images if _is_http(image)]
        encoded = [image for image in self.images if not _is_http(image)]
        body: dict[str, Any] = {"prompt": " ".join([*urls, self.prompt])}
        if encoded:
            body["base64Array"] = encoded
        if self.bot_type:
            body["botType"] = self.bot_type
        return _common_body(body, self.notify_hook, self.state, self.extra_body)


def build_imagine_request(
    prompt: Any,
    *,
    images: Any = None,
    bot_type: Any = None,
    notify_hook: Any = None,
    state: Any = None,
    extra_body: Any = None,
    allow_unresolved: bool = False,
) -> ImagineRequest | None:
    """
    Check the parameters of an imagine (a 2x2 grid from a prompt) and return the normalised request.

    :param prompt: the text prompt; must not be empty.
    :param images: image prompts: http(s) URLs, base64 data URIs or storage files (one value or a list).
    :param bot_type: ``"MID_JOURNEY"`` or ``"NIJI_JOURNEY"`` (any case); ``None`` for the server's default.
    :param notify_hook: an http(s) URL the server calls back on progress.
    :param state: free text echoed back on the task, at most 255 characters.
    :param extra_body: server-specific extras.
    :param allow_unresolved: skip values only known after rendering instead of rejecting them.
    :raises MidjourneyValidationError: naming the first invalid parameter.
    """
    known = _Known(allow_unresolved)
    if known(prompt):
        prompt = check_prompt("prompt", prompt)
    checked_images: tuple[Any, ...] = ()
    if known(images) and images is not None:
        pictures = check_image_list("images", images, allow_unresolved=allow_unresolved)
        if pictures is None:
            known.complete = False
        else:
            checked_images = tuple(picture.value for picture in pictures)
    if known(bot_type) and bot_type is not None:
        if not isinstance(bot_type, str) or bot_type.strip().upper() not in BOT_TYPES:
            raise MidjourneyValidationError("bot_type", f"must be one of {', '.join(BOT_TYPES)}, got {bot_type!r:.40}")
        bot_type = bot_type.strip().upper()
    if known(notify_hook) and notify_hook is not None:
        notify_hook = check_http_url("notify_hook", notify_hook)
    if known(state) and state is not None:
        state = check_state("state", state)
    if known(extra_body):
        extra_body = check_extra_body(extra_body, IMAGINE_BODY_KEYS)
    if not known.complete:
        return None
    return ImagineRequest(
        prompt=prompt,
        images=checked_images,
        bot_type=bot_type,
        notify_hook=notify_hook,
        state=state,
        extra_body=extra_body or None,
    )


# ------------------------------------------------------------------------------------------ action and modal


@dataclass(frozen=True)
class ActionRequest:
    """A checked ``POST /mj/submit/action`` request: press ``custom_id`` on finished task ``mj_task_id``."""

    mj_task_id: str
    custom_id: str
    notify_hook: str | None = None
    state: str | None = None
    extra_body: Mapping[str, Any] | None = field(default=None)

    def to_body(self) -> dict[str, Any]:
        """The JSON body as servers read it."""
        body: dict[str, Any] = {"taskId": self.mj_task_id, "customId": self.custom_id}
        return _common_body(body, self.notify_hook, self.state, self.extra_body)


def build_action_request(
    mj_task_id: Any,
    custom_id: Any,
    *,
    notify_hook: Any = None,
    state: Any = None,
    extra_body: Any = None,
) -> ActionRequest:
    """
    Check a button press and return the normalised request (run time only: the button comes from the task).

    :param mj_task_id: the finished task whose button is pressed.
    :param custom_id: the button's custom id (``MJ::JOB::upsample::1::…``).
    :param notify_hook: an http(s) URL the server calls back on progress.
    :param state: free text echoed back on the new task, at most 255 characters.
    :param extra_body: server-specific extras (trueai: ``enableRemix``, ``strong``).
    :raises MidjourneyValidationError: naming the first invalid parameter.
    """
    mj_task_id = check_task_id("mj_task_id", mj_task_id)
    if not isinstance(custom_id, str) or not custom_id.strip():
        raise MidjourneyValidationError("custom_id", f"must be a button's custom id, got {custom_id!r:.60}")
    return ActionRequest(
        mj_task_id=mj_task_id,
        custom_id=custom_id.strip(),
        notify_hook=None if notify_hook is None else check_http_url("notify_hook", notify_hook),
        state=None if state is None else check_state("state", state),
        extra_body=check_extra_body(extra_body, ACTION_BODY_KEYS) or None,
    )


@dataclass(frozen=True)
class ModalRequest:
    """A checked ``POST /mj/submit/modal`` request: confirm MODAL task ``mj_task_id`` with ``prompt``."""

    mj_task_id: str
    prompt: str
    extra_body: Mapping[str, Any] | None = None

    def to_body(self) -> dict[str, Any]:
        """The JSON body as servers read it (no inpainting mask: ``maskBase64`` empty)."""
        body: dict[str, Any] = {"taskId": self.mj_task_id, "prompt": self.prompt, "maskBase64": ""}
        body.update(self.extra_body or {})
        return body


def build_modal_request(mj_task_id: Any, prompt: Any, *, extra_body: Any = None) -> ModalRequest:
    """
    Check a modal confirmation and return the normalised request.

    :param mj_task_id: the task waiting in ``MODAL``.
    :param prompt: the prompt to confirm it with; must not be empty.
    :param extra_body: server-specific extras.
    :raises MidjourneyValidationError: naming the first invalid parameter.
    """
    return ModalRequest(
        mj_task_id=check_task_id("mj_task_id", mj_task_id),
        prompt=check_prompt("prompt", prompt),
        extra_body=check_extra_body(extra_body, MODAL_BODY_KEYS) or None,
    )
