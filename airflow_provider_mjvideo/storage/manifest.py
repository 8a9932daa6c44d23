"""
``manifest.json``: what a destination folder holds (one entry per clip, with size and sha256), read,
merged and written back; and the check that a clip already on storage is the one an entry recorded.

An entry is identified by ``(mj_task_id, index)``: a finished Midjourney clip never changes, so the
task id and clip index identify its content (the URL does not: URLs are re-signed and expire).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Mapping
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Final

from airflow_provider_mjvideo import __version__
from airflow_provider_mjvideo.storage.destination import fs_path, hash_file

if TYPE_CHECKING:
    from airflow.providers.common.compat.sdk import ObjectStoragePath

log = logging.getLogger(__name__)

MANIFEST_NAME: Final = "manifest.json"
MANIFEST_VERSION: Final = 1
#: The most of a manifest file read: far more than any folder of clips needs, far less than a stray video.
_MAX_MANIFEST_BYTES: Final = 16 << 20


def now_iso() -> str:
    """The current UTC time to the second, ISO 8601 (``2026-11-25T16:45:17+00:00``)."""
    return datetime.now(timezone.utc).replace(microsecond=0).isoformat()


def entry_key(entry: Mapping[str, Any]) -> tuple[str, int] | None:
    """An entry's identity, ``(mj_task_id, index)``; ``None`` for an entry without a usable one."""
    task_id, index = entry.get("mj_task_id"), entry.get("index")
    if isinstance(task_id, str) and isinstance(index, int) and not isinstance(index, bool):
        return task_id, index
    return None


def read_manifest(directory: ObjectStoragePath) -> list[dict[str, Any]]:
    """
    The clip entries of ``directory/manifest.json``; ``[]`` when missing or unreadable.

    :param directory: the destination folder.
    """
    path = directory / MANIFEST_NAME
    try:
        with path.fs.open(fs_path(path), "rb") as handle:
            data = json.loads(handle.read(_MAX_MANIFEST_BYTES))
    except FileNotFoundError:
        return []
    except Exception as err:
        log.warning("Ignoring unreadable %s: %s", path, err)
        return []
    clips = data.get("clips") if isinstance(data, dict) else None
    if not isinstance(clips, list):
        return []
    return [dict(entry) for entry in clips if isinstance(entry, dict) and entry_key(entry)]


def merge_entries(previous: Iterable[Mapping[str, Any]], current: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """
    Previous entries of other clips plus the current ones, sorted by task id and index.

    :param previous: the entries already recorded.
    :param current: the entries of this save; they replace previous entries of the same clip.
    """
    merged: dict[tuple[str, int], dict[str, Any]] = {}
    for entry in [*previous, *current]:
        key = entry_key(entry)
        if key:
            merged[key] = dict(entry)
    return [merged[key] for key in sorted(merged)]


def manifest_document(entries: list[dict[str, Any]]) -> dict[str, Any]:
    """
    The JSON document written to ``manifest.json``.

    :param entries: the clip entries, in order.
    """
    return {
        "version": MANIFEST_VERSION,
        "generator": f"airflow-provider-mjvideo {__version__}",
        "updated_at": now_iso(),
        "clips": entries,
    }


def is_reusable(previous: Mapping[str, Any] | None, target: ObjectStoragePath, name: str) -> bool:
    """
    Whether ``target`` is the very file an earlier save recorded in ``previous``: same file name, and the
    size and sha256 recomputed from storage (the file may have been replaced or damaged since).

    :param previous: the recorded entry of this clip, if any.
    :param target: the clip's file on storage.
    :param name: the file name this save would give the clip.
    """
    if not previous or previous.get("file") != name:
        return False
    try:
        fs = target.fs
        if not fs.exists(fs_path(target)) or fs.size(fs_path(target)) != previous.get("bytes"):
            return False
        return hash_file(target)[1] == previous.get("sha256")
    except Exception as err:
        log.warning("Cannot check %s for reuse (%s); downloading again", target, err)
        return False
