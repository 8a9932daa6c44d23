"""Placeholder until the storage-side module lands: pictures as the API takes them (URLs and data URIs)."""

from __future__ import annotations

from typing import Any, Final

from airflow_provider_mjvideo.exceptions import MidjourneyValidationError
from airflow_provider_mjvideo.validation import check_http_url, is_unresolved

DEFAULT_MAX_IMAGE_BYTES: Final = 10 << 20


def is_http_image(value: Any) -> bool:
    return isinstance(value, str) and value.strip().lower().startswith(("http://", "https://"))


def check_image_input(name: str, value: Any) -> Any:
    return check_http_url(name, value, allow_data_uri=True)


def check_image_list(name: str, value: Any, *, allow_unresolved: bool = False) -> list[Any]:
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, (list, tuple)):
        raise MidjourneyValidationError(name, f"must be a list of images, got {type(value).__name__}")
    return [
        item if allow_unresolved and is_unresolved(item) else check_image_input(f"{name}[{i}]", item)
        for i, item in enumerate(items)
    ]


def resolve_image_input(name: str, value: Any, *, max_bytes: int = DEFAULT_MAX_IMAGE_BYTES) -> str:
    return str(value)


def resolve_image_list(name: str, value: Any, *, max_bytes: int = DEFAULT_MAX_IMAGE_BYTES) -> list[str]:
    return [resolve_image_input(f"{name}[{i}]", item, max_bytes=max_bytes) for i, item in enumerate(value)]
