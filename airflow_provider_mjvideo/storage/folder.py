"""
The folder-wide views, ``manifest.json`` and the ``index.html`` gallery, rebuilt from the per-task
manifests so that saves of different tasks into one folder can run at the same time.

Why concurrent saves are safe without a lock (object stores have none to offer):

* Each save writes only files of its own task: its clips and ``manifests/<task id>.json``, each
  under a random temporary name moved onto the final name. No two saves of different tasks write
  the same per-task file, so none of them can lose another's entries there.
* The shared files are never *edited*, only *rebuilt*: :func:`rebuild_folder` reads every per-task
  manifest, writes ``manifest.json`` and ``index.html`` from them (atomically again), then reads
  them all once more; if anything changed meanwhile, it writes again, until a read finds nothing new.
  A rebuild from a stale read can therefore overwrite a newer one, but never for long: its writer
  reads again after writing and repairs it. The last write of each shared file is followed by a
  read that found every per-task manifest finished before it, and a per-task manifest finished
  after that read belongs to a save whose own rebuild writes later still. So once every save has
  returned, ``manifest.json`` and ``index.html`` list every clip of every task.

This relies on the store listing a file as soon as its upload completes (local filesystems, S3,
GCS and Azure Blob all do; fsspec's own listings cache is bypassed). It does not protect two saves of
the *same* task id at once: they write the same clips and the same per-task manifest, and the last
one wins (mapped downloads of distinct tasks never do that). A store that loses or corrupts a
per-task manifest loses that task's entries from the views too, until the task is saved again.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, Final

from airflow_provider_mjvideo.storage.destination import write_bytes_atomic
from airflow_provider_mjvideo.storage.gallery import GALLERY_NAME, render_gallery
from airflow_provider_mjvideo.storage.manifest import MANIFEST_NAME, collect_entries, manifest_bytes
from airflow_provider_mjvideo.validation import check_positive_int

if TYPE_CHECKING:
    from airflow.providers.common.compat.sdk import ObjectStoragePath

log = logging.getLogger(__name__)

#: Rebuilds of one call at most. Each one after the first means that another save wrote its manifest in
#: between, so a call needs at most one more than the saves that finish while it runs: this bounds a folder
#: whose manifests never stop changing, not a busy one. Giving up is logged, and may leave the views
#: behind until the next save into the folder.
MAX_REBUILDS: Final = 50


def rebuild_folder(directory: ObjectStoragePath, *, max_rebuilds: int = MAX_REBUILDS) -> list[dict[str, Any]]:
    """
    Write ``manifest.json`` and ``index.html`` from every per-task manifest of ``directory``, again
    until a fresh read of the manifests matches what was written.

    :param directory: the destination folder.
    :param max_rebuilds: give up (with a warning) after this many writes; a later save rebuilds again.
    :return: the entries last written, sorted by task id and index.
    """
    check_positive_int("max_rebuilds", max_rebuilds)
    written: list[dict[str, Any]] = []
    latest = collect_entries(directory)
    for _rebuild in range(max_rebuilds):
        written = latest
        write_bytes_atomic(directory / MANIFEST_NAME, manifest_bytes(written))
        write_bytes_atomic(directory / GALLERY_NAME, render_gallery(written).encode())
        latest = collect_entries(directory)
        if latest == written:
            return written
        # Another save finished between the read and the write: what was just written may lack it.
    log.warning(
        "%s kept changing during %d rebuilds of its manifest.json and index.html; the next save rebuilds them",
        directory,
        max_rebuilds,
    )
    return written
