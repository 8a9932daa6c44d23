"""
The one place that checks parameters, before any request is sent.

The hook validates every call through :func:`build_video_request`; operators call the same function
at DAG parse time with :data:`UNRESOLVED` standing in for values that are only known after
templating (Jinja strings, XComArgs), so literal mistakes surface when the DAG is parsed.
"""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal, overload
from urllib.parse import urlsplit

from airflow_provider_mjvideo.exceptions import MidjourneyValidationError


class _Unresolved:
    """Marker for a value that templating or an upstream XCom will supply later."""

    _instance: _Unresolved | None = None

    def __new__(cls) -> _Unresolved:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "UNRESOLVED"


#: Stands for a parameter whose value is not known yet (templated or from XCom).
UNRESOLVED: Final = _Unresolved()

MOTIONS: Final = ("low", "high")
ACTIONS: Final = ("extend",)
MAX_STATE_LENGTH: Final = 255
MAX_INDEX: Final = 3
#: The parameters of a video submission, in ``build_video_request``'s (and ``submit_video``'s) order.
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
)
#: Body keys this provider sets itself; ``extra_body`` may not override them.
CORE_BODY_KEYS: Final = frozenset(
    {"prompt", "image", "motion", "action", "index", "taskId", "task_id", "notifyHook", "state"}
)
_BATCH_SIZES: Final = (1, 2, 4)
_DATA_URI = re.compile(r"^data:[\w.+-]+/[\w.+-]+(;[\w.+-]+=[\w.+-]+)*;base64,[A-Za-z0-9+/=\s]+$")


def is_unresolved(value: Any) -> bool:
    """Whether ``value`` is only known after rendering: :data:`UNRESOLVED`, a Jinja string, an XComArg."""
    if value is UNRESOLVED:
        return True
    if isinstance(value, str):
        return "{{" in value or "{%" in value
    # XComArg, PlainXComArg, MappedArgument… all resolve at run time.
    return hasattr(value, "resolve") and not isinstance(value, (Mapping, list, tuple))


def _is_http_url(value: str) -> bool:
    parts = urlsplit(value)
    return parts.scheme in ("http", "https") and bool(parts.netloc) and " " not in value


def check_http_url(name: str, value: Any, *, allow_data_uri: bool = False) -> str:
    """
    Return ``value`` stripped if it is an http(s) URL (or, when allowed, a base64 data URI).

    :param name: the parameter's name, for the error message.
    :param value: the value to check.
    :param allow_data_uri: accept ``data:<mime>;base64,<data>`` too.
    :raises MidjourneyValidationError: naming ``name``.
    """
    if not isinstance(value, str) or not value.strip():
        raise MidjourneyValidationError(name, f"must be a non-empty URL string, got {value!r:.80}")
    text = value.strip()
    if _is_http_url(text):
        return text
    if allow_data_uri and text.startswith("data:"):
        if _DATA_URI.match(text):
            return text
        raise MidjourneyValidationError(name, "must be a data URI of the form data:<mime>;base64,<data>")
    expected = "an http(s) URL or a base64 data URI" if allow_data_uri else "an http(s) URL"
    raise MidjourneyValidationError(name, f"must be {expected}, got {text!r:.80}")


@overload
def check_positive_number(name: str, value: Any, *, allow_none: Literal[False] = False) -> float: ...
@overload
def check_positive_number(name: str, value: Any, *, allow_none: bool) -> float | None: ...
def check_positive_number(name: str, value: Any, *, allow_none: bool = False) -> float | None:
    """
    Return ``value`` as a float if it is a finite number greater than zero.

    :param name: the parameter's name, for the error message.
    :param value: the value to check (numbers, or numeric strings from templates).
    :param allow_none: accept ``None`` (meaning "no limit").
    :raises MidjourneyValidationError: naming ``name``.
    """
    if value is None and allow_none:
        return None
    if isinstance(value, bool):
        raise MidjourneyValidationError(name, f"must be a positive number of seconds, got {value!r}")
    if hasattr(value, "total_seconds"):
        value = value.total_seconds()
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise MidjourneyValidationError(name, f"must be a positive number of seconds, got {value!r:.80}") from None
    if not math.isfinite(number) or number <= 0:
        raise MidjourneyValidationError(name, f"must be a positive number of seconds, got {value!r}")
    return number


#: Words a rendered template or a connection extra may use for a boolean (any case).
TRUE_WORDS: Final = frozenset({"true", "yes", "on", "1"})
FALSE_WORDS: Final = frozenset({"false", "no", "off", "0"})


def check_max_file_bytes(value: Any) -> int:
    """
    Return ``value`` if it is a usable ``max_file_bytes`` cap: a positive integer number of bytes.

    :param value: the value to check.
    :raises MidjourneyValidationError: naming ``max_file_bytes``.
    """
    return check_positive_int("max_file_bytes", value, unit="bytes")


def check_indexes(value: Any, name: str = "indexes") -> list[int] | None:
    """
    Return clip indexes as a list of distinct ints ``0``-:data:`MAX_INDEX`, in order (``None`` meaning every clip).

    :param value: one int, a list/tuple of ints or digit strings, or a rendered template's ``"[0, 2]"`` / ``"1"``;
        ``None``, ``""``, ``"none"`` or ``"null"`` for every clip.
    :param name: the parameter's name in errors (``indexes``, ``defaults``).
    :raises MidjourneyValidationError: naming ``name``.
    """
    if value is None:
        return None
    if isinstance(value, str):
        text = value.strip()
        if text.lower() in ("", "none", "null"):
            return None
        try:
            value = json.loads(text)
        except ValueError:
            raise MidjourneyValidationError(
                name, f"must be clip indexes 0-{MAX_INDEX} such as [0, 2], got {text!r:.80}"
            ) from None
    items = [value] if isinstance(value, (int, str)) and not isinstance(value, bool) else value
    if not isinstance(items, (list, tuple)) or not items:
        raise MidjourneyValidationError(
            name, f"must be a non-empty list of clip indexes 0-{MAX_INDEX}, got {value!r:.80}"
        )
    out: list[int] = []
    for item in items:
        if isinstance(item, str) and item.strip().isdigit():
            item = int(item)
        if isinstance(item, bool) or not isinstance(item, int) or not 0 <= item <= MAX_INDEX:
            raise MidjourneyValidationError(name, f"each index must be an integer 0-{MAX_INDEX}, got {item!r:.40}")
        if item not in out:
            out.append(item)
    return out


def check_destination(value: Any) -> str:
    """
    Return a destination folder as a URI: ``file:///abs/dir/``, ``s3://bucket/prefix/``… as given (stripped),
    an absolute local path as ``file://<path>``. Syntax only: whether a filesystem serves the scheme is
    :func:`airflow_provider_mjvideo.storage.resolve_destination`'s business.

    :param value: the destination (a string or an ``os.PathLike``).
    :raises MidjourneyValidationError: naming ``destination``: empty, not a string, or a relative path.
    """
    if not isinstance(value, (str, os.PathLike)) or not str(value).strip():
        raise MidjourneyValidationError(
            "destination", f"must be a non-empty storage URI such as file:///data/mj/, got {value!r:.80}"
        )
    text = str(value).strip()
    if "://" in text:
        return text
    if not text.startswith("/"):
        raise MidjourneyValidationError(
            "destination", f"must be a URI (file:///…, s3://…, gs://…) or an absolute path, got {text!r:.80}"
        )
    return f"file://{text}"


def check_bool(name: str, value: Any) -> bool:
    """
    Return ``value`` as a bool: ``True``/``False``, ``1``/``0``, or a word of :data:`TRUE_WORDS` / :data:`FALSE_WORDS`.

    :param name: the parameter's name, for the error message.
    :param value: the value to check (a rendered template gives ``"true"``, a JSON extra ``true``).
    :raises MidjourneyValidationError: naming ``name``.
    """
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        word = value.strip().lower()
        if word in TRUE_WORDS:
            return True
        if word in FALSE_WORDS:
            return False
    raise MidjourneyValidationError(name, f"must be true or false, got {value!r:.80}")


def check_positive_int(name: str, value: Any, *, unit: str = "") -> int:
    """
    Return ``value`` as an int if it is a whole number of at least 1 (``50``, ``50.0`` or ``"50"``; never a bool).

    :param name: the parameter's name, for the error message.
    :param value: the value to check.
    :param unit: what is counted, for the message (``"bytes"``).
    :raises MidjourneyValidationError: naming ``name``.
    """
    number: int | None = None
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif isinstance(value, float) and value.is_integer():
        number = int(value)
    elif isinstance(value, str) and value.strip().isdigit():
        number = int(value.strip())
    if number is None or number < 1:
        what = f"a positive integer number of {unit}" if unit else "a positive integer"
        raise MidjourneyValidationError(name, f"must be {what}, got {value!r:.80}")
    return number


#: What a task's ``hook_params`` may set (the keyword arguments of both hooks).
HOOK_PARAMS: Final = ("retry_limit", "retry_delay", "retry_max_delay", "list_chunk_size")


def check_hook_params(value: Any) -> dict[str, Any]:
    """
    Return ``hook_params`` as a plain dict of checked values (``None`` → ``{}``); they travel in trigger kwargs.

    :param value: ``{"retry_limit": 3, "retry_delay": 2.0, …}``, keys from :data:`HOOK_PARAMS`.
    :raises MidjourneyValidationError: not a dict, an unknown key, or a value that is not a positive number.
    """
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise MidjourneyValidationError("hook_params", f"must be a dict, got {type(value).__name__}")
    unknown = sorted(set(value) - set(HOOK_PARAMS))
    if unknown:
        raise MidjourneyValidationError(
            "hook_params", f"unknown key(s) {', '.join(map(repr, unknown))}; use {', '.join(HOOK_PARAMS)}"
        )
    checked: dict[str, Any] = {}
    for key, raw in value.items():
        if key in ("retry_limit", "list_chunk_size"):
            checked[key] = check_positive_int(f"hook_params.{key}", raw)
        else:
            checked[key] = check_positive_number(f"hook_params.{key}", raw)
    return checked


def check_task_id(name: str, value: Any) -> str:
    """Return a Midjourney task id as a non-empty string (ids can exceed 2**53, so never a float)."""
    if isinstance(value, bool) or value is None:
        raise MidjourneyValidationError(name, f"must be a Midjourney task id, got {value!r}")
    if isinstance(value, float):
        raise MidjourneyValidationError(name, "must be a string: task ids are too long for a float")
    text = str(value).strip()
    if not text:
        raise MidjourneyValidationError(name, "must be a non-empty Midjourney task id")
    if any(char in text for char in "/?#") or len(text) > 128:
        raise MidjourneyValidationError(name, f"is not a valid task id: {text!r:.80}")
    return text


def _check_index(value: Any) -> int:
    if isinstance(value, bool):
        raise MidjourneyValidationError("index", f"must be an integer 0-{MAX_INDEX}, got {value!r}")
    if isinstance(value, str) and re.fullmatch(r"\s*\d+\s*", value):
        value = int(value)
    if not isinstance(value, int):
        raise MidjourneyValidationError("index", f"must be an integer 0-{MAX_INDEX}, got {value!r:.40}")
    if not 0 <= value <= MAX_INDEX:
        raise MidjourneyValidationError(
            "index", f"must be between 0 and {MAX_INDEX} (which clip of the parent to extend), got {value}"
        )
    return value


def _check_extra_body(extra_body: Any) -> dict[str, Any]:
    if extra_body is None:
        return {}
    if not isinstance(extra_body, Mapping):
        raise MidjourneyValidationError("extra_body", f"must be a dict, got {type(extra_body).__name__}")
    clash = sorted(CORE_BODY_KEYS.intersection(extra_body))
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


@dataclass(frozen=True)
class VideoRequest:
    """A validated, normalised ``POST /mj/submit/video`` request."""

    prompt: str
    motion: str
    image: str | None = None
    action: str | None = None
    index: int | None = None
    mj_task_id: str | None = None
    notify_hook: str | None = None
    state: str | None = None
    extra_body: Mapping[str, Any] | None = None

    def to_body(self) -> dict[str, Any]:
        """Return the JSON body as servers read it: the parent as ``taskId`` (and ``task_id``), index an int."""
        body: dict[str, Any] = {"prompt": self.prompt, "motion": self.motion}
        if self.image:
            body["image"] = self.image
        if self.action:
            body["action"] = self.action
        if self.mj_task_id is not None:
            body["taskId"] = self.mj_task_id
            body["task_id"] = self.mj_task_id
        if self.index is not None:
            body["index"] = self.index
        if self.notify_hook:
            body["notifyHook"] = self.notify_hook
        if self.state is not None:
            body["state"] = self.state
        body.update(self.extra_body or {})
        return body


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
    allow_unresolved: bool = False,
) -> VideoRequest | None:
    """
    Check the parameters of a video submission and return the normalised request.

    With ``allow_unresolved`` (DAG parse time), an argument may be :data:`UNRESOLVED`, a Jinja string
    or an XComArg: it is then skipped, the rules that depend on it are skipped too, and ``None`` is
    returned once everything known is valid.

    :param prompt: the text prompt; must not be empty.
    :param image: first frame, http(s) URL or base64 data URI; required unless ``action="extend"``.
    :param motion: ``"low"`` or ``"high"``.
    :param action: ``None`` for a new video, or ``"extend"``.
    :param index: which clip of the parent to extend, 0-3 (``"2"`` is accepted and sent as ``2``).
    :param mj_task_id: the parent task id for ``action="extend"``.
    :param notify_hook: an http(s) URL the server calls back on progress.
    :param state: free text echoed back on the task, at most 255 characters.
    :param extra_body: server-specific extras (``batchSize``, ``videoType``, ``endImage``, ``loop``…).
    :param allow_unresolved: skip values only known after rendering instead of rejecting them.
    :raises MidjourneyValidationError: naming the first invalid parameter.
    """
    complete = True

    def known(value: Any) -> bool:
        nonlocal complete
        if allow_unresolved and is_unresolved(value):
            complete = False
            return False
        return True

    if known(prompt) and (not isinstance(prompt, str) or not prompt.strip()):
        raise MidjourneyValidationError("prompt", "must be a non-empty string")
    if known(motion) and motion not in MOTIONS:
        raise MidjourneyValidationError("motion", f"must be 'low' or 'high', got {motion!r:.40}")
    if known(action) and action is not None and action not in ACTIONS:
        raise MidjourneyValidationError("action", f"must be None (new video) or 'extend', got {action!r:.40}")
    extending = action == "extend"

    if known(image) and image is not None:
        image = check_http_url("image", image, allow_data_uri=True)
    if known(action) and not extending and image is None:
        raise MidjourneyValidationError("image", "is required for a new video (only an extend may omit it)")

    if known(index) and index is not None:
        index = _check_index(index)
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
        if not isinstance(state, str):
            raise MidjourneyValidationError("state", f"must be a string, got {type(state).__name__}")
        if len(state) > MAX_STATE_LENGTH:
            raise MidjourneyValidationError("state", f"must be at most {MAX_STATE_LENGTH} characters, got {len(state)}")
    if known(extra_body):
        extra_body = _check_extra_body(extra_body)

    if not complete:
        return None
    return VideoRequest(
        prompt=prompt.strip(),
        motion=motion,
        image=image,
        action=action,
        index=index,
        mj_task_id=mj_task_id,
        notify_hook=notify_hook,
        state=state,
        extra_body=extra_body or None,
    )
