"""
:func:`save_task_clips`: save a finished task's clips, or its pictures, into a destination folder, with its
manifest and gallery.

This is what :class:`~airflow_provider_mjvideo.operators.download.DownloadVideoOperator` runs; it can be
called from your own tasks too. A video task's media are its clips (``videoUrls``); an image task's
(imagine, upscale, variation…: :attr:`MidjourneyTask.kind <airflow_provider_mjvideo.models.MidjourneyTask.kind>`)
are its pictures (:attr:`~airflow_provider_mjvideo.models.MidjourneyTask.image_urls`: the grid or the upscaled
image first, then the single images some servers list beside a grid).
"""

from __future__ import annotations

import logging
import posixpath
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import urlsplit

from airflow_provider_mjvideo.exceptions import (
    MidjourneyValidationError,
)
from airflow_provider_mjvideo.media_types import IMAGE_EXTENSION, ImageType, image_type_from_name
from airflow_provider_mjvideo.models import MidjourneyTask, TaskKind
from airflow_provider_mjvideo.retrying import TaskLogger
from airflow_provider_mjvideo.storage.destination import ensure_directory, resolve_destination
from airflow_provider_mjvideo.storage.downloader import DEFAULT_MAX_FILE_BYTES, MediaDownloader, redact_url
from airflow_provider_mjvideo.storage.folder import rebuild_folder
from airflow_provider_mjvideo.storage.manifest import (
    entry_key,
    is_reusable,
    merge_entries,
    now_iso,
    recorded_entries,
    write_task_manifest,
)
from airflow_provider_mjvideo.validation import MAX_INDEX, check_indexes, check_max_file_bytes, check_task_id

if TYPE_CHECKING:
    from airflow.providers.common.compat.sdk import ObjectStoragePath

    from airflow_provider_mjvideo.hooks.midjourney import MidjourneyHook

log = logging.getLogger(__name__)

#: The keys of one manifest entry in the operator's XCom return value.
XCOM_KEYS: Final = ("index", "url", "path", "bytes", "sha256")
_VIDEO_EXTENSIONS: Final = (".mp4", ".m4v", ".mov", ".webm")
#: A picture of unknown type is saved as PNG (Midjourney's own format).
_DEFAULT_IMAGE_TYPE: Final[ImageType] = "png"


def clip_filename(mj_task_id: str, index: int, url: str) -> str:
    """
    The file name of one clip: ``<task id>_<index><ext>``, the extension taken from the URL when it is
    a known video extension, else ``.mp4``.

    :param mj_task_id: the task.
    :param index: the clip index.
    :param url: the clip's URL.
    """
    ext = posixpath.splitext(urlsplit(url).path)[1].lower()
    if ext not in _VIDEO_EXTENSIONS:
        ext = ".mp4"
    return f"{mj_task_id}_{index}{ext}"


def picture_filename(mj_task_id: str, index: int, image_type: str | None) -> str:
    """
    The file name of one picture: ``<task id>_image<index>.<png|jpg|webp|gif>`` (``.png`` for an unknown type).

    :param mj_task_id: the task.
    :param index: the picture's position in the task's ``image_urls``.
    :param image_type: ``"png"``, ``"jpeg"``, ``"webp"`` or ``"gif"`` (from the URL or the picture's bytes).
    """
    extension = IMAGE_EXTENSION.get(image_type or "", IMAGE_EXTENSION[_DEFAULT_IMAGE_TYPE])
    return f"{mj_task_id}_image{index}{extension}"


@dataclass(frozen=True)
class SavedClip:
    """One clip or picture in the destination, and whether this run downloaded it."""

    entry: dict[str, Any]
    downloaded: bool

    def xcom(self) -> dict[str, Any]:
        """The ``{"index", "url", "path", "bytes", "sha256"}`` dict of the operator's return value."""
        return {key: self.entry[key] for key in XCOM_KEYS}


def _wanted_indexes(task: MidjourneyTask, urls: list[str], indexes: list[int] | None) -> list[int]:
    noun = "clip" if task.kind == "video" else "picture"
    if indexes is None:
        # Every picture; clips as far as an index can name them (a video job has at most four).
        return list(range(len(urls) if task.kind == "image" else min(len(urls), MAX_INDEX + 1)))
    for index in indexes:
        if index >= len(urls):
            raise MidjourneyValidationError(
                "indexes",
                f"task {task.id} has {len(urls)} {noun}(s) (indexes 0-{len(urls) - 1}); there is no {noun} {index}",
            )
    return indexes


def _reuse_name(kind: TaskKind, task_id: str, index: int, url: str, earlier: dict[str, Any] | None) -> str | None:
    """
    The file name a reusable earlier file must have: a clip's from its URL; a picture's from its URL's extension,
    or, when the URL names no type, the one the earlier save chose from the bytes.
    """
    if kind == "video":
        return clip_filename(task_id, index, url)
    named = image_type_from_name(url)
    if named:
        return picture_filename(task_id, index, named)
    recorded = str((earlier or {}).get("file") or "")
    stem, extension = posixpath.splitext(recorded)
    return recorded if stem == f"{task_id}_image{index}" and extension in IMAGE_EXTENSION.values() else None


def _save_one(
    task: MidjourneyTask,
    index: int,
    url: str,
    directory: ObjectStoragePath,
    earlier: dict[str, Any] | None,
    *,
    overwrite: bool,
    downloader: MediaDownloader,
    logger: TaskLogger,
) -> SavedClip:
    kind = task.kind
    what = f"{'clip' if kind == 'video' else 'picture'} {index} of task {task.id}"
    name = _reuse_name(kind, task.id, index, url, earlier)
    if not overwrite and name and is_reusable(earlier, directory / name, name):
        assert earlier is not None
        entry = {**earlier, "kind": kind, "action": task.action.value, "url": url, "path": str(directory / name)}
        entry["prompt"] = task.prompt
        logger.info(
            "Reusing %s: %s is identical (%d bytes, sha256 %s)", what, entry["path"], entry["bytes"], entry["sha256"]
        )
        return SavedClip(entry, downloaded=False)
    if kind == "video":
        target: Any = directory / clip_filename(task.id, index, url)
    else:
        named = image_type_from_name(url)
        # Without a type in the URL, the picture's first bytes name its extension.
        target = lambda found: directory / picture_filename(task.id, index, named or found)  # noqa: E731
    logger.info("Downloading %s from %s to %s", what, redact_url(url), directory)
    result = downloader.download(url, target, what=what, index=index, expect=kind)
    path = result.path
    assert path is not None  # MediaDownloader.download always says where it stored the file
    logger.info("Saved %s: %s, %d bytes, sha256 %s", what, path, result.bytes, result.sha256)
    entry = {
        "mj_task_id": task.id,
        "index": index,
        "kind": kind,
        "action": task.action.value,
        "file": path.name,
        "url": url,
        "path": str(path),
        "bytes": result.bytes,
        "sha256": result.sha256,
        "content_type": result.content_type,
        "prompt": task.prompt,
        "saved_at": now_iso(),
    }
    return SavedClip(entry, downloaded=True)


def save_task_clips(
    hook: MidjourneyHook,
    mj_task_id: str,
    destination: Any,
    indexes: Any = None,
    *,
    overwrite: bool = False,
    max_file_bytes: int = DEFAULT_MAX_FILE_BYTES,
    downloader: MediaDownloader | None = None,
    logger: TaskLogger | None = None,
    task: MidjourneyTask | None = None,
) -> list[SavedClip]:
    """
    Fetch a finished task (for fresh URLs) and save its clips, or an image task's pictures, and
    ``manifests/<task id>.json``; then rebuild the folder's ``manifest.json`` and ``index.html`` from every
    task's manifest.

    Clips are saved as ``<task id>_<index>.mp4``; pictures as ``<task id>_image<index>.<png|jpg|webp|gif>``, the
    extension from the URL, else from the picture's first bytes. Every parameter is checked, and the
    destination's filesystem resolved, before any request. Saves of *different* tasks into one folder may run
    at the same time (mapped downloads): none loses another's entries (see
    :mod:`~airflow_provider_mjvideo.storage.folder`). Two saves of the *same* task into one folder at once are
    not supported: the last one's manifest wins.

    :param hook: the API hook (used for ``get_task``, its base URL, key and timeout).
    :param mj_task_id: the finished task.
    :param destination: a directory URI (``file:///…/``, ``s3://bucket/prefix/``…).
    :param indexes: what to save, ``0`` to :data:`~airflow_provider_mjvideo.validation.MAX_INDEX`: clips of a
        video task; for an image task, pictures by their position in its ``image_urls`` (0 is the task's
        ``imageUrl``: the grid or the upscaled image; 1-4 the single images of a grid, on servers that list them).
        ``None`` for every clip or picture of the task.
    :param overwrite: download even when an identical file from an earlier run is present.
    :param max_file_bytes: refuse larger files.
    :param downloader: the :class:`MediaDownloader` (default: :meth:`MediaDownloader.for_hook`).
    :param logger: where to log.
    :param task: ``mj_task_id`` as the caller just fetched it (its URLs must be fresh); default: fetched here.
    :return: one :class:`SavedClip` per requested index, in order.
    """
    logger = logger or log
    mj_task_id = check_task_id("mj_task_id", mj_task_id)
    wanted = check_indexes(indexes)
    check_max_file_bytes(max_file_bytes)
    directory = resolve_destination(destination)

    if task is not None and task.id != mj_task_id:
        raise MidjourneyValidationError("task", f"the task given is {task.id}, not mj_task_id {mj_task_id}")
    task = task or hook.get_task(mj_task_id)
    urls = list(task.finished_media("to download"))
    wanted = _wanted_indexes(task, urls, wanted)

    ensure_directory(directory)
    previous = recorded_entries(directory, task.id)
    by_key = {entry_key(entry): entry for entry in previous}
    own = downloader is None
    downloader = downloader or MediaDownloader.for_hook(hook, max_bytes=max_file_bytes, logger=logger)
    try:
        saved = [
            _save_one(
                task,
                index,
                urls[index],
                directory,
                by_key.get((task.id, index)),
                overwrite=overwrite,
                downloader=downloader,
                logger=logger,
            )
            for index in wanted
        ]
    finally:
        if own:
            downloader.close()

    # This task's own manifest first, then the folder's views rebuilt from every task's: see storage.folder
    # for why saves of other tasks into the same folder at the same moment lose nothing.
    write_task_manifest(directory, task.id, merge_entries(previous, [clip.entry for clip in saved]))
    rebuild_folder(directory)
    return saved
