"""
Save a finished task's clips (or an image task's pictures) to any Airflow ``ObjectStoragePath``, streaming,
hashed, atomically.

:func:`save_task_clips` is what :class:`~airflow_provider_mjvideo.operators.download.DownloadVideoOperator`
runs; it can be called from your own tasks too. For each clip (``<task id>_<index>.mp4``) or picture
(``<task id>_image<index>.<png|jpg|webp|gif>``) it:

* streams the HTTP body in chunks (``chunk_size``, 1 MiB by default) straight into the destination
  file, so memory stays flat whatever the clip size, while computing its sha256;
* checks the status code, the ``Content-Type`` (``video/*`` for a clip, ``image/*`` for a picture, or a
  generic binary type whose first bytes are a video container or a PNG/JPEG/WebP/GIF picture) and the
  length (``Content-Length`` against ``max_file_bytes`` before reading, the running count while reading,
  and the count against ``Content-Length`` at the end);
* writes ``<name>.part-<random>`` and moves it onto ``<name>`` only when complete, so a failed or
  partial download never leaves a file that looks finished (on ``file://`` the move is an atomic
  ``rename``; object stores only ever show the final key after a complete copy);
* retries network errors, dropped connections, truncated bodies, HTTP 408/429/5xx a bounded number
  of times, from scratch, then raises :class:`MidjourneyDownloadError` (transient: Airflow's task
  retries apply);
* sends the connection's API key only to URLs of the same origin (scheme, host, port) as the
  connection's base URL, redirects included; clips on a CDN never see the key.

Next to the files it writes ``manifests/<task id>.json`` (what was saved, with sizes and hashes),
then rebuilds the folder's ``manifest.json`` (every task's clips) and ``index.html`` gallery from all
of them, so mapped downloads of several tasks may save into one folder at the same time. A clip whose
file is present and matches the manifest of an earlier run (same task id, clip index and file name;
size and sha256 recomputed from the file on disk) is reused without any request to the media server:
a finished Midjourney clip never changes, so the task id and index identify its content.
``overwrite=True`` downloads again regardless.

The modules, one job each:

* :mod:`~airflow_provider_mjvideo.storage.destination`: storage URIs to usable folders and files, atomic writes;
* :mod:`~airflow_provider_mjvideo.storage.downloader`: :class:`MediaDownloader`, one URL to one file;
* :mod:`~airflow_provider_mjvideo.storage.manifest`: the manifest files and the reuse check;
* :mod:`~airflow_provider_mjvideo.storage.gallery`: ``index.html`` (clips and pictures, one section per task);
* :mod:`~airflow_provider_mjvideo.storage.folder`: ``manifest.json`` and ``index.html`` rebuilt from
  the per-task manifests, and why concurrent saves are safe;
* :mod:`~airflow_provider_mjvideo.storage.clips`: :func:`save_task_clips`, which puts them together.
"""

from __future__ import annotations

from airflow_provider_mjvideo.storage.clips import (
    XCOM_KEYS,
    SavedClip,
    clip_filename,
    picture_filename,
    save_task_clips,
)
from airflow_provider_mjvideo.storage.destination import (
    DEFAULT_CHUNK_SIZE,
    PROVIDER_FOR_SCHEME,
    ensure_directory,
    hash_file,
    require_filesystem,
    resolve_destination,
    resolve_storage_path,
    write_bytes_atomic,
)
from airflow_provider_mjvideo.storage.downloader import (
    DEFAULT_MAX_FILE_BYTES,
    DEFAULT_MEDIA_ATTEMPTS,
    MAX_REDIRECTS,
    DownloadResult,
    MediaDownloader,
    human_size,
    redact_url,
    same_origin,
)
from airflow_provider_mjvideo.storage.folder import rebuild_folder
from airflow_provider_mjvideo.storage.gallery import GALLERY_NAME, group_by_task, render_gallery
from airflow_provider_mjvideo.storage.manifest import (
    MANIFEST_NAME,
    MANIFEST_VERSION,
    TASK_MANIFESTS_DIR,
    collect_entries,
    entry_kind,
    manifest_document,
    merge_entries,
    read_manifest,
    read_task_manifest,
    task_manifest_path,
)

__all__ = [
    "DEFAULT_CHUNK_SIZE",
    "DEFAULT_MAX_FILE_BYTES",
    "DEFAULT_MEDIA_ATTEMPTS",
    "GALLERY_NAME",
    "MANIFEST_NAME",
    "MANIFEST_VERSION",
    "MAX_REDIRECTS",
    "PROVIDER_FOR_SCHEME",
    "TASK_MANIFESTS_DIR",
    "XCOM_KEYS",
    "DownloadResult",
    "MediaDownloader",
    "SavedClip",
    "clip_filename",
    "collect_entries",
    "ensure_directory",
    "entry_kind",
    "group_by_task",
    "hash_file",
    "human_size",
    "manifest_document",
    "merge_entries",
    "picture_filename",
    "read_manifest",
    "read_task_manifest",
    "rebuild_folder",
    "redact_url",
    "render_gallery",
    "require_filesystem",
    "resolve_destination",
    "resolve_storage_path",
    "same_origin",
    "save_task_clips",
    "task_manifest_path",
    "write_bytes_atomic",
]
