"""
The manifests of a destination folder: what it holds (one entry per clip, with size and sha256), and
the check that a clip already on storage is the one an entry recorded.

Layout::

    <folder>/manifests/<task id>.json   one per Midjourney task: its clips, written only by a save of that task
    <folder>/manifest.json              the merged view of every task's clips (rebuilt by storage.folder)

Both files are the same document, :func:`manifest_document` (``version`` 1, ``generator``,
``updated_at``, ``clips``). Folders written before the per-task files existed have only
``manifest.json``; their entries still count: a task without a file under ``manifests/`` is read
from ``manifest.json``.

An entry is identified by ``(mj_task_id, index)``: a finished Midjourney clip or picture never changes, so
the task id and index identify its content (the URL does not: URLs are re-signed and expire). Its ``kind``
says what it is, ``"video"`` (a clip) or ``"image"`` (a picture of an imagine, upscale…); entries written
before pictures were saved have no ``kind``: they are clips (:func:`entry_kind`).
"""

from __future__ import annotations

import json
import logging
import posixpath
from collections.abc import Iterable, Mapping
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Final

from airflow_provider_mjvideo import __version__
from airflow_provider_mjvideo.storage.destination import ensure_directory, fs_path, hash_file, write_bytes_atomic

if TYPE_CHECKING:
    from airflow.providers.common.compat.sdk import ObjectStoragePath

    from airflow_provider_mjvideo.models import TaskKind

log = logging.getLogger(__name__)

#: The folder's merged manifest.
MANIFEST_NAME: Final = "manifest.json"
#: The sub-folder of the per-task manifests, ``<task id>.json`` each.
TASK_MANIFESTS_DIR: Final = "manifests"
MANIFEST_VERSION: Final = 1
_TASK_MANIFEST_SUFFIX: Final = ".json"
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


def entry_kind(entry: Mapping[str, Any]) -> TaskKind:
    """What an entry holds: ``"image"`` (a picture) or ``"video"`` (a clip, also every entry without a ``kind``)."""
    return "image" if entry.get("kind") == "image" else "video"


def _read_entries(path: ObjectStoragePath) -> list[dict[str, Any]] | None:
    """The clip entries of one manifest file; ``None`` when it is missing or unreadable."""
    try:
        with path.fs.open(fs_path(path), "rb") as handle:
            data = json.loads(handle.read(_MAX_MANIFEST_BYTES))
    except FileNotFoundError:
        return None
    except Exception as err:
        log.warning("Ignoring unreadable %s: %s", path, err)
        return None
    clips = data.get("clips") if isinstance(data, dict) else None
    if not isinstance(clips, list):
        log.warning("Ignoring %s: it has no list of clips", path)
        return None
    return [dict(entry) for entry in clips if isinstance(entry, dict) and entry_key(entry)]


def read_manifest(directory: ObjectStoragePath) -> list[dict[str, Any]]:
    """
    The clip entries of ``directory/manifest.json`` (the merged view); ``[]`` when missing or unreadable.

    :param directory: the destination folder.
    """
    return _read_entries(directory / MANIFEST_NAME) or []


def task_manifest_path(directory: ObjectStoragePath, mj_task_id: str) -> ObjectStoragePath:
    """
    Where the manifest of one task's clips lives: ``<directory>/manifests/<task id>.json``.

    :param directory: the destination folder.
    :param mj_task_id: a checked task id (never contains ``/``).
    """
    return directory / TASK_MANIFESTS_DIR / f"{mj_task_id}{_TASK_MANIFEST_SUFFIX}"


def _own_entries(entries: Iterable[dict[str, Any]], mj_task_id: str) -> list[dict[str, Any]]:
    return [entry for entry in entries if entry.get("mj_task_id") == mj_task_id]


def read_task_manifest(directory: ObjectStoragePath, mj_task_id: str) -> list[dict[str, Any]] | None:
    """
    The entries of one task's manifest file; ``None`` when the task has none (or it is unreadable).

    :param directory: the destination folder.
    :param mj_task_id: the task.
    """
    entries = _read_entries(task_manifest_path(directory, mj_task_id))
    return None if entries is None else _own_entries(entries, mj_task_id)


def recorded_entries(directory: ObjectStoragePath, mj_task_id: str) -> list[dict[str, Any]]:
    """
    What the folder records of one task's clips: its manifest file, else (a folder written before
    per-task manifests existed) its entries in ``manifest.json``.

    :param directory: the destination folder.
    :param mj_task_id: the task.
    """
    own = read_task_manifest(directory, mj_task_id)
    return own if own is not None else _own_entries(read_manifest(directory), mj_task_id)


def write_task_manifest(directory: ObjectStoragePath, mj_task_id: str, entries: list[dict[str, Any]]) -> None:
    """
    Write one task's manifest file atomically (temporary name, then move).

    Only a save of ``mj_task_id`` writes this file, so saves of different tasks never write the same
    manifest file; two saves of the *same* task at once still race here (the last one wins).

    :param directory: the destination folder.
    :param mj_task_id: the task.
    :param entries: every entry of that task's clips (earlier ones merged in by the caller).
    """
    path = task_manifest_path(directory, mj_task_id)
    ensure_directory(path.parent)
    write_bytes_atomic(path, manifest_bytes(entries))


def collect_entries(directory: ObjectStoragePath) -> list[dict[str, Any]]:
    """
    Every clip entry of the folder, sorted by task id and index: each per-task manifest under
    ``manifests/``, plus the ``manifest.json`` entries of tasks that have none there (folders written
    before per-task manifests existed).

    The listing bypasses fsspec's listings cache, so it sees every file whose upload has completed.

    :param directory: the destination folder.
    """
    folder = directory / TASK_MANIFESTS_DIR
    fs = folder.fs
    fs.invalidate_cache(fs_path(folder))
    try:
        names = [posixpath.basename(str(name)) for name in fs.ls(fs_path(folder), detail=False)]
    except FileNotFoundError:
        names = []
    per_task: list[dict[str, Any]] = []
    recorded: set[str] = set()
    # ``.part-<random>`` files of writes in progress do not end in .json: they are skipped.
    for name in sorted(name for name in names if name.endswith(_TASK_MANIFEST_SUFFIX)):
        mj_task_id = name[: -len(_TASK_MANIFEST_SUFFIX)]
        entries = read_task_manifest(directory, mj_task_id)
        if entries is not None:
            recorded.add(mj_task_id)
            per_task.extend(entries)
    legacy = [entry for entry in read_manifest(directory) if entry["mj_task_id"] not in recorded]
    return merge_entries(legacy, per_task)


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
    The JSON document of a manifest file (the merged ``manifest.json`` and each per-task file alike).

    :param entries: the clip entries, in order.
    """
    return {
        "version": MANIFEST_VERSION,
        "generator": f"airflow-provider-mjvideo {__version__}",
        "updated_at": now_iso(),
        "clips": entries,
    }


def manifest_bytes(entries: list[dict[str, Any]]) -> bytes:
    """
    :func:`manifest_document` as the UTF-8 JSON written to storage.

    :param entries: the clip entries, in order.
    """
    return json.dumps(manifest_document(entries), indent=2, ensure_ascii=False).encode()


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
