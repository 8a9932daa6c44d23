"""Typed, immutable views of the API's task objects, parsed tolerantly from every shape servers send."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum
from types import MappingProxyType
from typing import Any

import pendulum

from airflow_provider_mjvideo.exceptions import MidjourneyResponseError, shorten


class TaskStatus(str, Enum):
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

    @classmethod
    def parse(cls, value: Any) -> TaskStatus:
        """Map a server's status string to a member; empty and unknown values become ``UNKNOWN``."""
        text = str(value or "").strip().upper()
        try:
            return cls(text)
        except ValueError:
            return cls.UNKNOWN

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


def _epoch_ms_to_datetime(value: Any) -> datetime | None:
    """Turn epoch milliseconds (int, float or digit string) into an aware UTC datetime; 0/None/garbage → None."""
    if value is None or isinstance(value, bool):
        return None
    try:
        millis = float(value)
    except (TypeError, ValueError, OverflowError):
        return None
    if not math.isfinite(millis) or millis <= 0:
        return None
    if millis < 1e11:  # a value in seconds, not milliseconds (no server was seen doing this, but cheap)
        millis *= 1000
    try:
        return pendulum.from_timestamp(millis / 1000, tz="UTC")
    except (OverflowError, ValueError, OSError):  # beyond the calendar (e.g. micro- or nanoseconds): unknown
        return None


def _progress_percent(value: Any) -> int:
    """``"56%"`` → 56; ``""``, ``None`` and garbage (``"NaN%"``, infinities, huge integers) → 0; clamped to 0..100."""
    if isinstance(value, bool):
        return 0
    try:
        if isinstance(value, (int, float)):
            number = float(value)
        else:
            number = float(str(value or "").strip().rstrip("%").strip())
    except (ValueError, OverflowError):
        return 0
    if not math.isfinite(number):
        return 0
    return max(0, min(100, int(number)))


def _as_str(value: Any) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def _looks_like_url(text: str | None) -> str | None:
    """Keep absolute URLs (and the odd scheme-relative or root-relative one); drop any other text."""
    if text and ("://" in text or text.startswith("/")):
        return text
    return None


def _url_from_item(item: Any) -> str | None:
    if isinstance(item, Mapping):
        return _looks_like_url(_as_str(item.get("url") or item.get("videoUrl") or item.get("video_url")))
    if isinstance(item, str):
        return _looks_like_url(_as_str(item))
    return None


def _url_list(value: Any) -> list[str]:
    """Read a list of URLs from a list of strings/objects, or from a JSON string holding such a list."""
    if isinstance(value, str):
        text = value.strip()
        if not text:
            return []
        if text.startswith("["):
            try:
                value = json.loads(text)
            except ValueError:
                return []
        else:
            url = _looks_like_url(text)
            return [url] if url else []
    if not isinstance(value, list):
        return []
    return [url for url in (_url_from_item(item) for item in value) if url]


def extract_video_urls(raw: Mapping[str, Any]) -> list[str]:
    """
    Find a task's video URLs wherever the server put them, in server order.

    Looks, in this order, at ``videoUrls`` (objects or strings), ``videoUrl``, ``video_urls`` (a list
    or a JSON string holding one), and ``imageUrl`` when it points at an ``.mp4``.
    """
    urls = _url_list(raw.get("videoUrls"))
    if urls:
        return urls
    single = _looks_like_url(_as_str(raw.get("videoUrl")))
    if single:
        return [single]
    urls = _url_list(raw.get("video_urls"))
    if urls:
        return urls
    image = _as_str(raw.get("imageUrl"))
    if image and image.split("?", 1)[0].lower().endswith(".mp4"):
        return [image]
    return []


@dataclass(frozen=True)
class MidjourneyTask:
    """
    One Midjourney task as the server last reported it.

    :param id: the task id (a string: ids are longer than 2**53).
    :param status: the parsed status.
    :param progress: percent done, 0..100.
    :param video_urls: the clips' URLs in server order (empty until the video is done).
    :param image_url: the task's image (the first frame for a video), if any.
    :param fail_reason: why the task failed, if it did.
    :param prompt: the prompt the server recorded.
    :param action: the server's ``action`` (``VIDEO``, ``VIDEO_EXTEND``…): informative only.
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
    action: str | None = None
    state: str | None = None
    submit_time: datetime | None = None
    start_time: datetime | None = None
    finish_time: datetime | None = None
    raw_status: str = ""
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

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
        task_id = _as_str(raw.get("id") if raw.get("id") is not None else raw.get("taskId"))
        if not task_id:
            raise MidjourneyResponseError(f"Task object without an id: {shorten(repr(dict(raw)), 200)}")
        status = TaskStatus.parse(raw.get("status"))
        urls = extract_video_urls(raw)
        image_url = _as_str(raw.get("imageUrl"))
        return cls(
            id=task_id,
            status=status,
            progress=100 if status is TaskStatus.SUCCESS else _progress_percent(raw.get("progress")),
            video_urls=tuple(urls),
            image_url=image_url,
            fail_reason=_as_str(raw.get("failReason") or raw.get("fail_reason")),
            prompt=_as_str(raw.get("prompt")),
            action=_as_str(raw.get("action")),
            state=_as_str(raw.get("state")),
            submit_time=_epoch_ms_to_datetime(raw.get("submitTime")),
            start_time=_epoch_ms_to_datetime(raw.get("startTime")),
            finish_time=_epoch_ms_to_datetime(raw.get("finishTime")),
            raw_status=str(raw.get("status") or ""),
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
            "action": self.action,
            "state": self.state,
            "submit_time": iso(self.submit_time),
            "start_time": iso(self.start_time),
            "finish_time": iso(self.finish_time),
        }
