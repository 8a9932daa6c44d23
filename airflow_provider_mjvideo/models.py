"""Typed, immutable views of the API's task objects, parsed tolerantly from every shape servers send."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum
from types import MappingProxyType
from typing import Any, Final, Literal, TypeVar

from airflow_provider_mjvideo.exceptions import (
    MidjourneyResponseError,
    MidjourneyTaskFailedError,
    MidjourneyTaskNotReadyError,
    MidjourneyValidationError,
    shorten,
)
from airflow_provider_mjvideo.parsing import (
    as_str,
    epoch_ms_to_datetime,
    extract_image_urls,
    extract_parent_id,
    extract_video_urls,
    progress_percent,
)

#: What a task makes: pictures, or clips.
TaskKind = Literal["image", "video"]


_Word = TypeVar("_Word", bound="_ServerWord")


class _ServerWord(str, Enum):
    """A word a server sends (a status, an action), upper case; every subclass has an ``UNKNOWN`` member."""

    @classmethod
    def parse(cls: type[_Word], value: Any) -> _Word:
        """Map a server's string to a member, case and spaces aside; empty and unknown values become ``UNKNOWN``."""
        try:
            return cls(str(value or "").strip().upper())
        except ValueError:
            return cls("UNKNOWN")


class TaskStatus(_ServerWord):
    """The status of a Midjourney task, as the proxy servers report it."""

    NOT_START = "NOT_START"
    SUBMITTED = "SUBMITTED"
    IN_PROGRESS = "IN_PROGRESS"
    MODAL = "MODAL"
    SUCCESS = "SUCCESS"
    FAILURE = "FAILURE"
    CANCEL = "CANCEL"
    #: ``""`` (new-api before its first upstream poll) or a value this provider does not know.
    UNKNOWN = "UNKNOWN"

    @property
    def is_pending(self) -> bool:
        """The server is still working on the task (``UNKNOWN`` included: new-api's ``""`` before its first poll)."""
        return self in _PENDING

    @property
    def is_terminal(self) -> bool:
        """The task will not change by itself any more: SUCCESS, FAILURE, CANCEL, or MODAL (it waits for a confirm)."""
        return self not in _PENDING

    @property
    def is_failure(self) -> bool:
        """The task ended without a result: FAILURE, CANCEL, or MODAL (it will not finish without a confirm)."""
        return self in _FAILURES

    @property
    def is_dead(self) -> bool:
        """Nothing will ever come of the task (FAILURE, CANCEL): a new try must pay for a new one."""
        return self in _DEAD


_PENDING: frozenset[TaskStatus] = frozenset(
    {TaskStatus.NOT_START, TaskStatus.SUBMITTED, TaskStatus.IN_PROGRESS, TaskStatus.UNKNOWN}
)
_DEAD: frozenset[TaskStatus] = frozenset({TaskStatus.FAILURE, TaskStatus.CANCEL})
_FAILURES: frozenset[TaskStatus] = _DEAD | {TaskStatus.MODAL}


class TaskAction(_ServerWord):
    """What a Midjourney task does, as the server's ``action`` says (``UNKNOWN``: empty or new to this provider)."""

    IMAGINE = "IMAGINE"
    UPSCALE = "UPSCALE"
    VARIATION = "VARIATION"
    REROLL = "REROLL"
    BLEND = "BLEND"
    DESCRIBE = "DESCRIBE"
    SHORTEN = "SHORTEN"
    PAN = "PAN"
    ZOOM = "ZOOM"
    INPAINT = "INPAINT"
    OUTPAINT = "OUTPAINT"
    VIDEO = "VIDEO"
    VIDEO_EXTEND = "VIDEO_EXTEND"
    UNKNOWN = "UNKNOWN"

    @property
    def makes_pictures(self) -> bool:
        """The task's result is a picture (a grid or a single image), not clips."""
        return self in _PICTURE_ACTIONS


_PICTURE_ACTIONS: Final = frozenset(
    {
        TaskAction.IMAGINE,
        TaskAction.UPSCALE,
        TaskAction.VARIATION,
        TaskAction.REROLL,
        TaskAction.BLEND,
        TaskAction.PAN,
        TaskAction.ZOOM,
        TaskAction.INPAINT,
        TaskAction.OUTPAINT,
    }
)
#: Actions whose picture is a 2x2 grid of four images (upscale one to animate it).
GRID_ACTIONS: Final = frozenset(
    {TaskAction.IMAGINE, TaskAction.VARIATION, TaskAction.REROLL, TaskAction.BLEND, TaskAction.PAN, TaskAction.ZOOM}
)
_UPSAMPLE: Final = re.compile(r"^MJ::JOB::upsample::(\d+)::")


@dataclass(frozen=True)
class Button:
    """
    One button of a finished task, pressed with ``/mj/submit/action``.

    :param custom_id: what the server reads (``MJ::JOB::upsample::1::<job id>``).
    :param label: its label (``U1``, ``V2``; ``""`` for an emoji button).
    :param emoji: its emoji (``🔄``), if any.
    """

    custom_id: str
    label: str = ""
    emoji: str = ""

    @property
    def name(self) -> str:
        """How a person names it: the label, else the emoji, else the custom id."""
        return self.label or self.emoji or self.custom_id

    @property
    def upscale_index(self) -> int | None:
        """The 0-based grid image an upsample button upscales (``U1`` → 0), else ``None``."""
        match = _UPSAMPLE.match(self.custom_id)
        return int(match.group(1)) - 1 if match else None

    def to_dict(self) -> dict[str, str]:
        """The JSON form carried in task summaries."""
        return {"custom_id": self.custom_id, "label": self.label, "emoji": self.emoji}


def _buttons(value: Any) -> tuple[Button, ...]:
    if not isinstance(value, list):
        return ()
    found = []
    for item in value:
        if isinstance(item, Mapping) and as_str(item.get("customId")):
            found.append(
                Button(
                    custom_id=str(as_str(item.get("customId"))),
                    label=as_str(item.get("label")) or "",
                    emoji=as_str(item.get("emoji")) or "",
                )
            )
    return tuple(found)


@dataclass(frozen=True)
class MidjourneyTask:
    """
    One Midjourney task as the server last reported it.

    :param id: the task id (a string: ids are longer than 2**53).
    :param status: the parsed status.
    :param progress: percent done, 0..100.
    :param video_urls: the clips' URLs in server order (empty until the video is done).
    :param image_url: the task's picture (a grid, an upscale, or a video's first frame), if any.
    :param fail_reason: why the task failed, if it did.
    :param prompt: the prompt the server recorded.
    :param action: what the task does (``IMAGINE``, ``UPSCALE``, ``VIDEO``…; ``UNKNOWN`` when the server says
        nothing this provider knows). For a wait, :attr:`kind` is what counts.
    :param image_urls: the task's pictures in server order: ``image_url`` first, then the single images some
        servers list beside a grid.
    :param buttons: the buttons of a finished task (upscale, variation, reroll, animate…), in server order.
    :param state: the free text sent with the submission, echoed back.
    :param submit_time: when the task was submitted (aware UTC), if known.
    :param start_time: when work started, if known.
    :param finish_time: when it finished, if known.
    :param raw_status: the status string exactly as the server sent it.
    :param raw: the server's JSON object, read-only.
    """

    id: str
    status: TaskStatus
    progress: int = 0
    video_urls: tuple[str, ...] = ()
    image_url: str | None = None
    fail_reason: str | None = None
    prompt: str | None = None
    action: TaskAction = TaskAction.UNKNOWN
    state: str | None = None
    submit_time: datetime | None = None
    start_time: datetime | None = None
    finish_time: datetime | None = None
    raw_status: str = ""
    image_urls: tuple[str, ...] = ()
    buttons: tuple[Button, ...] = ()
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def kind(self) -> TaskKind:
        """
        ``"image"`` for a task whose result is pictures (imagine, upscale, variation…), else ``"video"``.

        A task with clips is a video whatever its action (an upscale of a video grid gives an mp4); a task whose
        action this provider does not know is a video, as every task of its video routes is.
        """
        if self.video_urls or not self.action.makes_pictures:
            return "video"
        return "image"

    @property
    def parent_id(self) -> str | None:
        """The task this one was made from (an extend's video, an upscale's grid), when the server says."""
        return extract_parent_id(self.raw)

    def button(self, label_or_custom_id: str) -> Button:
        """
        The button named ``label_or_custom_id``: its full custom id, its label (``"U2"``, any case) or its emoji.

        :raises MidjourneyValidationError: the task has no such button (the message lists the ones it has).
        """
        wanted = str(label_or_custom_id).strip()
        for match in (
            lambda b: b.custom_id == wanted,
            lambda b: bool(b.label) and b.label.lower() == wanted.lower(),
            lambda b: bool(b.emoji) and b.emoji == wanted,
        ):
            for candidate in self.buttons:
                if match(candidate):
                    return candidate
        has = ", ".join(candidate.name for candidate in self.buttons) or "none (is it finished?)"
        raise MidjourneyValidationError(
            "button",
            f"task {self.id} ({self.action.value}, {self.status.value}) has no button {wanted!r}; its buttons: {has}",
        )

    def upscale_button(self, index: int) -> Button:
        """
        The button that upscales grid image ``index`` (0-based: 0 is Midjourney's U1).

        :raises MidjourneyValidationError: the task has no such button (not a finished grid, or no such image).
        """
        for candidate in self.buttons:
            if candidate.upscale_index == index:
                return candidate
        has = ", ".join(candidate.name for candidate in self.buttons) or "none (is it a finished grid?)"
        raise MidjourneyValidationError(
            "index",
            f"task {self.id} ({self.action.value}, {self.status.value}) has no upscale button for image {index} "
            f"(U{index + 1}); its buttons: {has}",
        )

    def finished_media(self, purpose: str) -> tuple[str, ...]:
        """
        What a finished task made, by index, or a clear error saying why there is nothing: a video task's clips,
        an image task's pictures. The one rule for "is this task ready to be used" (downloads and choices ask it).

        :param purpose: what the media are for, as the errors end: ``"to download"``, ``"to choose from"``.
        :raises MidjourneyTaskFailedError: the task ended FAILURE, CANCEL or MODAL.
        :raises MidjourneyTaskNotReadyError: it is still running, or SUCCESS without URLs so far.
        """
        media = "clips" if self.kind == "video" else "pictures"
        if self.status.is_failure:
            raise MidjourneyTaskFailedError(
                f"Midjourney task {self.id} ended {self.status.value}"
                + (f": {self.fail_reason}" if self.fail_reason else "")
                + f"; it has no {media} {purpose}",
                mj_task_id=self.id,
                status=self.status.value,
            )
        if self.status is not TaskStatus.SUCCESS:
            raise MidjourneyTaskNotReadyError(
                f"Midjourney task {self.id} is {self.status.value} ({self.progress}%), not finished: "
                f"wait for it (MidjourneyTaskSensor) before asking for {media} {purpose}"
            )
        urls = self.video_urls if self.kind == "video" else self.image_urls
        if not urls:
            what = "video URLs" if self.kind == "video" else "picture (imageUrl)"
            raise MidjourneyTaskNotReadyError(f"Midjourney task {self.id} is SUCCESS but has no {what} yet")
        return tuple(urls)

    def finished_clips(self, purpose: str) -> tuple[str, ...]:
        """
        The clips' URLs of a finished video task (:meth:`finished_media`), refusing an image task.

        :param purpose: what the clips are for, as the errors end: ``"to choose from"``.
        :raises MidjourneyTaskFailedError: the task ended FAILURE, CANCEL or MODAL.
        :raises MidjourneyValidationError: it is an image task (pictures, no clips).
        :raises MidjourneyTaskNotReadyError: it is still running, or SUCCESS without URLs so far.
        """
        if self.kind == "image" and not self.status.is_failure:
            raise MidjourneyValidationError(
                "mj_task_id",
                f"task {self.id} is an {self.action.value} task: it made pictures, not video clips {purpose}",
            )
        return self.finished_media(purpose)

    @classmethod
    def from_api(cls, raw: Any) -> MidjourneyTask:
        """
        Parse one task object from any server variant.

        :param raw: the decoded JSON object.
        :raises MidjourneyResponseError: when ``raw`` is not an object or has no id.
        """
        if not isinstance(raw, Mapping):
            raise MidjourneyResponseError(
                f"Expected a task object, got {type(raw).__name__}: {shorten(repr(raw), 120)}"
            )
        task_id = as_str(raw.get("id") if raw.get("id") is not None else raw.get("taskId"))
        if not task_id:
            raise MidjourneyResponseError(f"Task object without an id: {shorten(repr(dict(raw)), 200)}")
        status = TaskStatus.parse(raw.get("status"))
        urls = extract_video_urls(raw)
        images = extract_image_urls(raw)
        return cls(
            id=task_id,
            status=status,
            progress=100 if status is TaskStatus.SUCCESS else progress_percent(raw.get("progress")),
            video_urls=tuple(urls),
            image_url=as_str(raw.get("imageUrl")),
            fail_reason=as_str(raw.get("failReason") or raw.get("fail_reason")),
            prompt=as_str(raw.get("prompt")),
            action=TaskAction.parse(raw.get("action")),
            state=as_str(raw.get("state")),
            submit_time=epoch_ms_to_datetime(raw.get("submitTime")),
            start_time=epoch_ms_to_datetime(raw.get("startTime")),
            finish_time=epoch_ms_to_datetime(raw.get("finishTime")),
            raw_status=str(raw.get("status") or ""),
            image_urls=tuple(images),
            buttons=_buttons(raw.get("buttons")),
            raw=MappingProxyType(dict(raw)),
        )

    def to_summary(self) -> dict[str, Any]:
        """Return the JSON-serialisable summary pushed to XCom and carried in trigger events."""

        def iso(value: datetime | None) -> str | None:
            return value.isoformat() if value else None

        return {
            "id": self.id,
            "status": self.status.value,
            "progress": self.progress,
            "video_urls": list(self.video_urls),
            "image_url": self.image_url,
            "fail_reason": self.fail_reason,
            "prompt": self.prompt,
            "action": self.action.value,
            "kind": self.kind,
            "image_urls": list(self.image_urls),
            "buttons": [button.to_dict() for button in self.buttons],
            "state": self.state,
            "submit_time": iso(self.submit_time),
            "start_time": iso(self.start_time),
            "finish_time": iso(self.finish_time),
        }


def is_task_summary(value: Any) -> bool:
    """
    Whether ``value`` is a task summary as :meth:`MidjourneyTask.to_summary` makes them (an XCom read back, say).

    :param value: any decoded JSON value.
    """
    return (
        isinstance(value, Mapping)
        and isinstance(value.get("id"), str)
        and bool(value["id"])
        and isinstance(value.get("status"), str)
        and isinstance(value.get("video_urls"), list)
    )
