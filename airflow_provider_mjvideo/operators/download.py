"""The operator that saves a finished Midjourney task's clips, or an image task's pictures, to object storage."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from airflow.providers.common.compat.sdk import BaseOperator

from airflow_provider_mjvideo.assets import attach_extra, download_extra
from airflow_provider_mjvideo.connection import DEFAULT_CONN_ID
from airflow_provider_mjvideo.operators.base import MidjourneyHookMixin
from airflow_provider_mjvideo.storage import DEFAULT_MAX_FILE_BYTES, resolve_destination, save_task_clips
from airflow_provider_mjvideo.validation import (
    check_bool,
    check_destination,
    check_indexes,
    check_max_file_bytes,
    check_task_id,
    is_unresolved,
)

if TYPE_CHECKING:
    from airflow.providers.common.compat.sdk import Context
    from airflow.providers.openlineage.extractors import OperatorLineage

    from airflow_provider_mjvideo.models import MidjourneyTask


class DownloadVideoOperator(MidjourneyHookMixin, BaseOperator):
    """
    Save the clips of a finished Midjourney video, or the pictures of a finished image task (an imagine's
    grid, an upscaled image…), to any Airflow ``ObjectStoragePath`` destination.

    The operator fetches the task itself, so the URLs are fresh even when the upstream XCom is
    old. Each clip is streamed in chunks to ``<destination>/<task id>_<index>.mp4``, each picture to
    ``<destination>/<task id>_image<index>.<png|jpg|webp|gif>`` (the extension from the URL, else from the
    picture's first bytes), through a temporary ``.part-<random>`` name (never a partial file under the
    final name), hashed with sha256 while streaming, and checked for status, ``Content-Type`` (``video/*``
    for clips, ``image/*`` for pictures, or a generic type whose first bytes say so) and length. The task's
    ``manifests/<task id>.json`` is written next to the files, then the folder's ``manifest.json``
    and ``index.html`` gallery (pictures beside clips, one section per task in the order they were saved)
    are rebuilt from every task's, so mapped downloads of different tasks
    may share one destination and run at the same time (not two downloads of the same task at once).
    A file that an earlier run saved and that still matches its manifest entry (size and sha256) is
    reused without any request.

    **XCom return value:** the manifest, a list of ``{"index", "url", "path", "bytes", "sha256"}``
    dicts (one per clip or picture, in ``indexes`` order; ``path`` is the file's URI) — never the bytes.

    **Assets:** for every ``Asset`` in ``outlets`` the asset event's extra carries the task id, prompt, action,
    parent id and each clip's ``index``, ``path``, ``bytes`` and ``sha256`` (see :mod:`airflow_provider_mjvideo.assets`;
    never a URL). **OpenLineage** (with ``apache-airflow-providers-openlineage``): the Midjourney task is the
    input dataset, each saved file an output dataset (see :mod:`airflow_provider_mjvideo.lineage`).

    :param mj_task_id: the finished Midjourney task, usually ``<submit>.output``; a sensor's summary
        (``<wait>.output``) is accepted too (templated).
    :param destination: a directory URI such as ``file:///data/mj/{{ ds }}/``, or ``s3://…`` /
        ``gs://…`` when the matching provider is installed; ``scheme://conn_id@bucket/…`` picks the
        storage connection (templated).
    :param indexes: what to save, ints 0-3 (or one int): clips of a video task; for an image task, pictures by
        their position in the task's ``image_urls`` (0 is its ``imageUrl``, the grid or the upscaled image; 1-4
        the single images of a grid on servers that list them, such as trueai). ``None`` saves every clip or
        picture (templated).
    :param midjourney_conn_id: the Midjourney connection (its key goes only to URLs on the API's origin).
    :param overwrite: download again even when an identical file from an earlier run is present.
    :param max_file_bytes: the largest file accepted, in bytes (default 1 GiB); a larger one fails the task.
    :param hook_params: keyword arguments of the hook that fetches the task (``retry_limit``, ``retry_delay``,
        ``retry_max_delay``).
    """

    template_fields: Sequence[str] = ("mj_task_id", "destination", "indexes")
    ui_color = "#d9f2e6"

    def __init__(
        self,
        *,
        mj_task_id: str,
        destination: str,
        indexes: list[int] | int | None = None,
        midjourney_conn_id: str = DEFAULT_CONN_ID,
        overwrite: bool = False,
        max_file_bytes: int = DEFAULT_MAX_FILE_BYTES,
        hook_params: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.mj_task_id = mj_task_id
        self.destination = destination
        self.indexes = indexes
        self._use_connection(midjourney_conn_id, hook_params)
        self.overwrite = check_bool("overwrite", overwrite)
        self.max_file_bytes = check_max_file_bytes(max_file_bytes)
        # Parse-time checks of whatever is literal; rendered values are checked again in execute().
        if not is_unresolved(mj_task_id) and not isinstance(mj_task_id, Mapping):
            check_task_id("mj_task_id", mj_task_id)
        if not is_unresolved(destination):
            check_destination(destination)
        if not is_unresolved(indexes):
            check_indexes(indexes)
        # What OpenLineage reports once the task succeeded (get_openlineage_facets_on_complete).
        self._saved_task: MidjourneyTask | None = None
        self._saved_clips: list[dict[str, Any]] = []
        self._api_base_url: str | None = None

    def execute(self, context: Context) -> list[dict[str, Any]]:
        """Check the rendered parameters, fetch the task, save its clips; return the manifest."""
        raw_id = self.mj_task_id
        if isinstance(raw_id, Mapping) and "id" in raw_id:  # a MidjourneyTaskSensor's summary works too
            raw_id = raw_id["id"]
        mj_task_id = check_task_id("mj_task_id", raw_id)
        check_destination(self.destination)
        indexes = check_indexes(self.indexes)
        resolve_destination(self.destination)  # a clear error for a missing filesystem, before any request
        try:
            task = self.hook.get_task(mj_task_id)
            saved = save_task_clips(
                self.hook,
                mj_task_id,
                self.destination,
                indexes,
                overwrite=self.overwrite,
                max_file_bytes=self.max_file_bytes,
                logger=self.log,
                task=task,
            )
        finally:
            self.hook.close()
        self._saved_task, self._saved_clips = task, [clip.entry for clip in saved]
        self._api_base_url = self.hook.settings.base_url
        attach_extra(context, download_extra(task, self._saved_clips))
        downloaded = sum(clip.downloaded for clip in saved)
        self.log.info(
            "Saved %d file(s) of task %s to %s: %d downloaded, %d reused",
            len(saved),
            mj_task_id,
            self.destination,
            downloaded,
            len(saved) - downloaded,
        )
        return [clip.xcom() for clip in saved]

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> OperatorLineage | None:
        """
        The Midjourney task in, the saved files out (OpenLineage; only imported when its provider is installed).

        :param task_instance: the task instance that succeeded (unused: this run's clips are on the operator).
        :returns: ``None`` when nothing was saved by this operator object.
        """
        if self._saved_task is None or self._api_base_url is None:
            return None
        from airflow_provider_mjvideo.lineage import download_lineage

        task = self._saved_task
        return download_lineage(self._api_base_url, task.id, task.prompt, self._saved_clips)
