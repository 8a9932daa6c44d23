"""
:func:`save_task_clips`: save a finished task's clips into a destination folder, with its manifest and gallery.

This is what :class:`~airflow_provider_mjvideo.operators.download.DownloadVideoOperator` runs; it can be
called from your own tasks too.
"""

from __future__ import annotations

import logging
import posixpath
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import urlsplit

from airflow_provider_mjvideo.exceptions import (
    MidjourneyTaskFailedError,
    MidjourneyTaskNotReadyError,
    MidjourneyValidationError,
)
from airflow_provider_mjvideo.models import MidjourneyTask, TaskStatus
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
    from airflow_provider_mjvideo.hooks.midjourney import MidjourneyHook

log = logging.getLogger(__name__)

#: The keys of one manifest entry in the operator's XCom return value.
XCOM_KEYS: Final = ("index", "url", "path", "bytes", "sha256")
_VIDEO_EXTENSIONS: Final = (".mp4", ".m4v", ".mov", ".webm")


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


@dataclass(frozen=True)
class SavedClip:
    """One clip in the destination, and whether this run downloaded it."""

    entry: dict[str, Any]
    downloaded: bool

    def xcom(self) -> dict[str, Any]:
        """The ``{"index", "url", "path", "bytes", "sha256"}`` dict of the operator's return value."""
        return {key: self.entry[key] for key in XCOM_KEYS}


def _finished_task(task: MidjourneyTask) -> MidjourneyTask:
    if task.status.is_failure:
        raise MidjourneyTaskFailedError(
            f"Midjourney task {task.id} ended {task.status.value}"
            + (f": {task.fail_reason}" if task.fail_reason else "")
            + "; it has no clips to download",
            mj_task_id=task.id,
            status=task.status.value,
        )
    if task.status is not TaskStatus.SUCCESS:
        raise MidjourneyTaskNotReadyError(
            f"Midjourney task {task.id} is {task.status.value} ({task.progress}%), not finished: "
            "wait for it (MidjourneyTaskSensor) before downloading"
        )
    if not task.video_urls:
        raise MidjourneyTaskNotReadyError(f"Midjourney task {task.id} is SUCCESS but has no video URLs yet")
    return task


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
    Fetch a finished task (for fresh URLs) and save its clips and ``manifests/<task id>.json``; then
    rebuild the folder's ``manifest.json`` and ``index.html`` from every task's manifest.

    Every parameter is checked, and the destination's filesystem resolved, before any request. Saves
    of *different* tasks into one folder may run at the same time (mapped downloads): none loses
    another's entries (see :mod:`~airflow_provider_mjvideo.storage.folder`). Two saves of the *same*
    task into one folder at once are not supported: the last one's manifest wins.

    :param hook: the API hook (used for ``get_task``, its base URL, key and timeout).
    :param mj_task_id: the finished task.
    :param destination: a directory URI (``file:///…/``, ``s3://bucket/prefix/``…).
    :param indexes: the clips to save, ``0`` to :data:`~airflow_provider_mjvideo.validation.MAX_INDEX`; ``None``
        for every clip of the task.
    :param overwrite: download even when an identical file from an earlier run is present.
    :param max_file_bytes: refuse larger clips.
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
    task = _finished_task(task or hook.get_task(mj_task_id))
    urls = list(task.video_urls)
    if wanted is None:
        wanted = list(range(min(len(urls), MAX_INDEX + 1)))
    for index in wanted:
        if index >= len(urls):
            raise MidjourneyValidationError(
                "indexes",
                f"task {task.id} has {len(urls)} clip(s) (indexes 0-{len(urls) - 1}); there is no clip {index}",
            )

    ensure_directory(directory)
    previous = recorded_entries(directory, task.id)
    by_key = {entry_key(entry): entry for entry in previous}
    own = downloader is None
    downloader = downloader or MediaDownloader.for_hook(hook, max_bytes=max_file_bytes, logger=logger)
    saved: list[SavedClip] = []
    try:
        for index in wanted:
            url = urls[index]
            name = clip_filename(task.id, index, url)
            target = directory / name
            what = f"clip {index} of task {task.id}"
            earlier = by_key.get((task.id, index))
            if not overwrite and is_reusable(earlier, target, name):
                assert earlier is not None
                entry = {**earlier, "url": url, "path": str(target), "prompt": task.prompt}
                logger.info(
                    "Reusing %s: %s is identical (%d bytes, sha256 %s)", what, target, entry["bytes"], entry["sha256"]
                )
                saved.append(SavedClip(entry, downloaded=False))
                continue
            logger.info("Downloading %s from %s to %s", what, redact_url(url), target)
            result = downloader.download(url, target, what=what, index=index)
            logger.info("Saved %s: %s, %d bytes, sha256 %s", what, target, result.bytes, result.sha256)
            entry = {
                "mj_task_id": task.id,
                "index": index,
                "file": name,
                "url": url,
                "path": str(target),
                "bytes": result.bytes,
                "sha256": result.sha256,
                "content_type": result.content_type,
                "prompt": task.prompt,
                "saved_at": now_iso(),
            }
            saved.append(SavedClip(entry, downloaded=True))
    finally:
        if own:
            downloader.close()

    # This task's own manifest first, then the folder's views rebuilt from every task's: see storage.folder
    # for why saves of other tasks into the same folder at the same moment lose nothing.
    write_task_manifest(directory, task.id, merge_entries(previous, [clip.entry for clip in saved]))
    rebuild_folder(directory)
    return saved
