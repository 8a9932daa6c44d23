"""
The one place that checks parameter values, before any request is sent.

Each check names the parameter in its :class:`MidjourneyValidationError`. The submission builders
(:mod:`airflow_provider_mjvideo.submissions`) compose them for each route; operators run the same checks
at DAG parse time, skipping values only known after templating (:func:`is_unresolved`), so literal
mistakes surface when the DAG is parsed.
"""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Mapping
from typing import Any, Final, Literal, overload
from urllib.parse import urlsplit

from airflow_provider_mjvideo.exceptions import MidjourneyValidationError
from airflow_provider_mjvideo.media_types import image_data_uri_problem


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

MAX_STATE_LENGTH: Final = 255
#: What a wait's success must carry: the task's own kind, clips, or a picture.
EXPECTS: Final = ("auto", "video", "image")
MAX_INDEX: Final = 3


def is_unresolved(value: Any) -> bool:
    """Whether ``value`` is only known after rendering: :data:`UNRESOLVED`, a Jinja string, an XComArg."""
    if value is UNRESOLVED:
        return True
    if isinstance(value, str):
        return "{{" in value or "{%" in value
    # XComArg, PlainXComArg, MappedArgument, DagParam… (Airflow's ResolveMixin) all resolve at run time. A path
    # has a resolve() too (pathlib.Path, ObjectStoragePath), but no iter_references(): it is a literal value.
    return (
        hasattr(value, "resolve")
        and hasattr(value, "iter_references")
        and not isinstance(value, (Mapping, list, tuple))
    )


def _is_http_url(value: str) -> bool:
    parts = urlsplit(value)
    return parts.scheme in ("http", "https") and bool(parts.netloc) and " " not in value


def check_http_url(name: str, value: Any, *, allow_data_uri: bool = False) -> str:
    """
    Return ``value`` stripped if it is an http(s) URL (or, when allowed, a base64 data URI).

    :param name: the parameter's name, for the error message.
    :param value: the value to check.
    :param allow_data_uri: accept an image data URI too (``data:image/png;base64,<data>``: the rule is
        :func:`~airflow_provider_mjvideo.media_types.image_data_uri_problem`'s).
    :raises MidjourneyValidationError: naming ``name``.
    """
    if not isinstance(value, str) or not value.strip():
        raise MidjourneyValidationError(name, f"must be a non-empty URL string, got {value!r:.80}")
    text = value.strip()
    if _is_http_url(text):
        return text
    if allow_data_uri and text[:5].lower() == "data:":
        problem = image_data_uri_problem(text)
        if problem:
            raise MidjourneyValidationError(name, problem)
        return text
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


def check_index(name: str, value: Any, what: str = "which clip") -> int:
    """
    Return a clip or grid-image index as an int ``0``-:data:`MAX_INDEX` (``"2"`` from a template is ``2``).

    Indexes are 0-based everywhere in this provider: 0 is a video's first clip, and a grid's first image
    (Midjourney's U1).

    :param name: the parameter's name, for the error message.
    :param value: the value to check.
    :param what: what the index selects, for the error message.
    :raises MidjourneyValidationError: naming ``name``.
    """
    if isinstance(value, bool):
        raise MidjourneyValidationError(name, f"must be an integer 0-{MAX_INDEX}, got {value!r}")
    if isinstance(value, str) and re.fullmatch(r"\s*\d+\s*", value):
        value = int(value)
    if not isinstance(value, int):
        raise MidjourneyValidationError(name, f"must be an integer 0-{MAX_INDEX}, got {value!r:.40}")
    if not 0 <= value <= MAX_INDEX:
        raise MidjourneyValidationError(name, f"must be between 0 and {MAX_INDEX} ({what}), got {value}")
    return value


def check_expect(name: str, value: Any) -> str:
    """
    Return what a wait expects, one of :data:`EXPECTS`.

    :param name: the parameter's name, for the error message.
    :param value: the value to check.
    :raises MidjourneyValidationError: naming ``name``.
    """
    if value not in EXPECTS:
        raise MidjourneyValidationError(name, f"must be 'auto', 'video' or 'image', got {value!r:.40}")
    return str(value)


def check_prompt(name: str, value: Any) -> str:
    """
    Return a prompt stripped, if it is a non-empty string.

    :param name: the parameter's name, for the error message.
    :param value: the value to check.
    :raises MidjourneyValidationError: naming ``name``.
    """
    if not isinstance(value, str) or not value.strip():
        raise MidjourneyValidationError(name, "must be a non-empty string")
    return value.strip()


def check_state(name: str, value: Any) -> str:
    """
    Return ``state`` (free text the server echoes on the task) if it is a string of at most 255 characters.

    :param name: the parameter's name, for the error message.
    :param value: the value to check.
    :raises MidjourneyValidationError: naming ``name``.
    """
    if not isinstance(value, str):
        raise MidjourneyValidationError(name, f"must be a string, got {type(value).__name__}")
    if len(value) > MAX_STATE_LENGTH:
        raise MidjourneyValidationError(name, f"must be at most {MAX_STATE_LENGTH} characters, got {len(value)}")
    return value
