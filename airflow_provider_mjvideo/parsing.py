"""Tolerant readers of the fields servers put in task objects: times, progress, URLs, buttons, parents."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import pendulum


def epoch_ms_to_datetime(value: Any) -> datetime | None:
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


def progress_percent(value: Any) -> int:
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


def as_str(value: Any) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def looks_like_url(text: str | None) -> str | None:
    """Keep absolute URLs (and the odd scheme-relative or root-relative one); drop any other text."""
    if text and ("://" in text or text.startswith("/")):
        return text
    return None


def url_from_item(item: Any) -> str | None:
    if isinstance(item, Mapping):
        return looks_like_url(as_str(item.get("url") or item.get("videoUrl") or item.get("video_url")))
    if isinstance(item, str):
        return looks_like_url(as_str(item))
    return None


def url_list(value: Any) -> list[str]:
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
            url = looks_like_url(text)
            return [url] if url else []
    if not isinstance(value, list):
        return []
    return [url for url in (url_from_item(item) for item in value) if url]


def extract_video_urls(raw: Mapping[str, Any]) -> list[str]:
    """
    Find a task's video URLs wherever the server put them, in server order.

    Looks, in this order, at ``videoUrls`` (objects or strings), ``videoUrl``, ``video_urls`` (a list
    or a JSON string holding one), and ``imageUrl`` when it points at an ``.mp4``.
    """
    urls = url_list(raw.get("videoUrls"))
    if urls:
        return urls
    single = looks_like_url(as_str(raw.get("videoUrl")))
    if single:
        return [single]
    urls = url_list(raw.get("video_urls"))
    if urls:
        return urls
    image = as_str(raw.get("imageUrl"))
    if image and image.split("?", 1)[0].lower().endswith(".mp4"):
        return [image]
    return []


def is_mp4(url: str | None) -> bool:
    """Whether a URL names an ``.mp4`` (its path, before any query string)."""
    return bool(url) and str(url).split("?", 1)[0].lower().endswith(".mp4")


def extract_image_urls(raw: Mapping[str, Any]) -> list[str]:
    """
    A task's pictures in server order: ``imageUrl`` first (a grid, a single upscale, or a video's first frame),
    then the single images of ``imageUrls`` (trueai lists a grid's four), without repeats and without ``.mp4``s.
    """
    urls: list[str] = []
    main = looks_like_url(as_str(raw.get("imageUrl")))
    for url in [main, *url_list(raw.get("imageUrls"))]:
        if url and not is_mp4(url) and url not in urls:
            urls.append(url)
    return urls


def extract_parent_id(raw: Mapping[str, Any]) -> str | None:
    """
    The task an extend, upscale or other action was made from: ``parentId`` (trueai), else
    ``properties.parentId``; ``None`` when the server does not say (a new video or grid, or a server that
    keeps no parent).
    """
    parent = as_str(raw.get("parentId"))
    properties = raw.get("properties")
    if parent is None and isinstance(properties, Mapping):
        parent = as_str(properties.get("parentId"))
    return parent
