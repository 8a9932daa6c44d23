"""
What the Midjourney view shows, read only from what Airflow already holds: XComs and the downloads' manifests.

* **Task summaries** (:func:`~airflow_provider_mjvideo.models.is_task_summary`): a sensor's return value, a submit
  operator's ``mj_task`` XCom, the review operator's ``mj_task`` XCom. The newest summary of a Midjourney task wins.
* **Saved files**: a download's return value lists ``{index, url, path, bytes, sha256}`` per file; the folders of
  those paths hold the manifests (``storage.manifest``), whose entries name the Midjourney task, the file, its
  content type and prompt. A file counts as saved only when its folder's manifest lists it under the same path
  and sha256 the download returned, and the entry's file name lies in that very folder
  (:func:`saved_file` refuses everything else).

Nothing here calls the Midjourney API. Every function is synchronous (database and storage I/O): the routes are
plain ``def`` routes, which FastAPI runs in its thread pool.
"""

from __future__ import annotations

import logging
import posixpath
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

from airflow_provider_mjvideo.models import is_task_summary
from airflow_provider_mjvideo.storage.clips import XCOM_KEYS
from airflow_provider_mjvideo.storage.destination import resolve_destination
from airflow_provider_mjvideo.storage.manifest import collect_entries

if TYPE_CHECKING:
    from datetime import datetime

    from airflow.providers.common.compat.sdk import ObjectStoragePath
    from sqlalchemy.orm import Session

log = logging.getLogger(__name__)

#: The XCom keys that may hold a task summary (the return value, and the operators' ``mj_task``).
SUMMARY_KEYS: Final = ("return_value", "mj_task")
#: How many recent runs of readable DAGs the navigation page looks through for Midjourney tasks.
RUNS_SCANNED: Final = 200


class RefusedFile(Exception):
    """A manifest entry that points outside its own folder (``../``, another bucket): never served."""


@dataclass(frozen=True)
class TaskInstanceRef:
    """One Airflow task instance of a run."""

    task_id: str
    map_index: int = -1

    @property
    def label(self) -> str:
        """``task`` or ``task[2]``."""
        return self.task_id if self.map_index < 0 else f"{self.task_id}[{self.map_index}]"


@dataclass(frozen=True)
class SavedFile:
    """
    One file a download saved, as its folder's manifest lists it.

    :param mj_task_id: the Midjourney task.
    :param index: the clip's (or picture's) index in its task.
    :param path: the file's URI, as the manifest and the download's return value both say.
    :param content_type: what the file is (``video/mp4``, ``image/png``…), from the manifest.
    :param size: its size in bytes, from the manifest.
    :param prompt: the task's prompt, from the manifest.
    :param saved_by: the download task instance that saved it.
    """

    mj_task_id: str
    index: int
    path: str
    content_type: str
    size: int | None
    prompt: str | None
    saved_by: TaskInstanceRef
    folder: Any = field(repr=False, compare=False)
    file_name: str = ""

    @property
    def is_image(self) -> bool:
        """Pictures render as ``<img>``, everything else as ``<video>``."""
        return self.content_type.lower().startswith("image/")

    def storage_path(self) -> ObjectStoragePath:
        """The file on storage: its manifest's folder joined with the entry's bare file name."""
        return self.folder / self.file_name


@dataclass
class MjTaskView:
    """One Midjourney task of a run: its newest summary, who reported it, and the files saved of it."""

    id: str
    summary: dict[str, Any]
    reported_by: set[TaskInstanceRef] = field(default_factory=set)
    saved: dict[int, SavedFile] = field(default_factory=dict)

    @property
    def kind(self) -> str:
        """``"image"`` or ``"video"`` (a summary of an older provider has no kind: its tasks made videos)."""
        return str(self.summary.get("kind") or "video")

    @property
    def cdn_urls(self) -> list[str]:
        """The server's URLs of the task's clips (a video) or pictures (an image task), in index order."""
        key = "image_urls" if self.kind == "image" else "video_urls"
        return [str(url) for url in self.summary.get(key) or [] if url]

    @property
    def sort_key(self) -> tuple[str, str]:
        return (str(self.summary.get("submit_time") or ""), self.id)


@dataclass
class RunView:
    """One DAG run and its Midjourney tasks, oldest submission first."""

    dag_id: str
    run_id: str
    state: str
    run_after: datetime | None
    tasks: list[MjTaskView]

    def for_task_instance(self, ref: TaskInstanceRef, returned: Iterable[str] = ()) -> list[MjTaskView]:
        """
        The Midjourney tasks one task instance reported or saved, or whose id it returned (a submit's return value).

        :param ref: the task instance.
        :param returned: the string return values of that task instance.
        """
        ids = set(returned)
        return [task for task in self.tasks if ref in task.reported_by or task.id in ids or _saved_by(task, ref)]


def _saved_by(task: MjTaskView, ref: TaskInstanceRef) -> bool:
    return any(saved.saved_by == ref for saved in task.saved.values())


def _is_download_result(value: Any) -> bool:
    return (
        isinstance(value, list)
        and bool(value)
        and all(isinstance(item, Mapping) and all(key in item for key in XCOM_KEYS) for item in value)
    )


@dataclass(frozen=True)
class _Row:
    task: TaskInstanceRef
    key: str
    value: Any
    timestamp: Any


def _xcom_rows(session: Session, runs: Sequence[tuple[str, str]]) -> dict[tuple[str, str], list[_Row]]:
    from airflow.models.xcom import XComModel
    from sqlalchemy import select, tuple_

    if not runs:
        return {}
    query = (
        select(
            XComModel.dag_id,
            XComModel.run_id,
            XComModel.task_id,
            XComModel.map_index,
            XComModel.key,
            XComModel.value,
            XComModel.timestamp,
        )
        .where(tuple_(XComModel.dag_id, XComModel.run_id).in_(list(runs)))
        .where(XComModel.key.in_(SUMMARY_KEYS))
        .order_by(XComModel.timestamp)
    )
    found: dict[tuple[str, str], list[_Row]] = {}
    for dag_id, run_id, task_id, map_index, key, value, timestamp in session.execute(query):
        found.setdefault((dag_id, run_id), []).append(_Row(TaskInstanceRef(task_id, map_index), key, value, timestamp))
    return found


def _manifest_entries(folder_uri: str, cache: dict[str, tuple[Any, dict[str, dict[str, Any]]]]) -> tuple[Any, dict]:
    """A folder and its manifest entries by path (read once per page)."""
    if folder_uri not in cache:
        try:
            folder = resolve_destination(folder_uri)
            entries = {str(entry.get("path")): entry for entry in collect_entries(folder)}
        except Exception as err:  # a folder that is gone or unreadable shows no saved files, it breaks no page
            log.warning("Cannot read the manifests in %s: %s", folder_uri, err)
            folder, entries = None, {}
        cache[folder_uri] = (folder, entries)
    return cache[folder_uri]


def _saved_files(rows: Iterable[_Row]) -> list[SavedFile]:
    """The files the run's downloads saved, each confirmed by its folder's manifest (same path and sha256)."""
    cache: dict[str, tuple[Any, dict[str, dict[str, Any]]]] = {}
    saved = []
    for row in rows:
        if row.key != "return_value" or not _is_download_result(row.value):
            continue
        for item in row.value:
            path = str(item["path"])
            folder, entries = _manifest_entries(posixpath.dirname(path), cache)
            entry = entries.get(path)
            if folder is None or entry is None or entry.get("sha256") != item.get("sha256"):
                continue
            saved.append(
                SavedFile(
                    mj_task_id=str(entry["mj_task_id"]),
                    index=int(entry["index"]),
                    path=path,
                    content_type=str(entry.get("content_type") or ""),
                    size=entry.get("bytes") if isinstance(entry.get("bytes"), int) else None,
                    prompt=entry.get("prompt") if isinstance(entry.get("prompt"), str) else None,
                    saved_by=row.task,
                    folder=folder,
                    file_name=str(entry.get("file") or ""),
                )
            )
    return saved


def _build_run(dag_id: str, run_id: str, state: Any, run_after: Any, rows: list[_Row]) -> RunView:
    tasks: dict[str, MjTaskView] = {}
    for row in rows:  # oldest first: the newest summary of a task wins
        if is_task_summary(row.value):
            view = tasks.setdefault(row.value["id"], MjTaskView(row.value["id"], dict(row.value)))
            view.summary = dict(row.value)
            view.reported_by.add(row.task)
    for saved in _saved_files(rows):
        view = tasks.setdefault(
            saved.mj_task_id, MjTaskView(saved.mj_task_id, {"id": saved.mj_task_id, "prompt": saved.prompt})
        )
        view.saved[saved.index] = saved
    ordered = sorted(tasks.values(), key=lambda task: task.sort_key)
    return RunView(dag_id, run_id, str(getattr(state, "value", state) or ""), run_after, ordered)


def _runs(session: Session, dag_ids: Iterable[str], *, run_id: str | None = None, scan: int = RUNS_SCANNED) -> list:
    from airflow.models.dagrun import DagRun
    from sqlalchemy import select

    query = select(DagRun.dag_id, DagRun.run_id, DagRun.state, DagRun.run_after).where(DagRun.dag_id.in_(list(dag_ids)))
    if run_id is not None:
        query = query.where(DagRun.run_id == run_id)
    query = query.order_by(DagRun.run_after.desc(), DagRun.id.desc()).limit(scan)
    return list(session.execute(query))


def recent_runs(session: Session, readable_dag_ids: Iterable[str], limit: int = 20) -> list[RunView]:
    """
    The newest runs of readable DAGs that made Midjourney tasks, newest first.

    :param session: a metadata database session.
    :param readable_dag_ids: the DAGs the user may read (the auth manager's answer).
    :param limit: at most this many runs.
    """
    runs = _runs(session, readable_dag_ids)
    rows = _xcom_rows(session, [(dag_id, run_id) for dag_id, run_id, _state, _after in runs])
    views = []
    for dag_id, run_id, state, run_after in runs:
        view = _build_run(dag_id, run_id, state, run_after, rows.get((dag_id, run_id), []))
        if view.tasks:
            views.append(view)
            if len(views) >= limit:
                break
    return views


def run_view(session: Session, dag_id: str, run_id: str) -> RunView | None:
    """
    One run's Midjourney tasks; ``None`` when the run does not exist.

    :param session: a metadata database session.
    :param dag_id: the DAG (already checked readable by the route).
    :param run_id: the run.
    """
    runs = _runs(session, [dag_id], run_id=run_id, scan=1)
    if not runs:
        return None
    _dag, _run, state, run_after = runs[0]
    return _build_run(
        dag_id, run_id, state, run_after, _xcom_rows(session, [(dag_id, run_id)]).get((dag_id, run_id), [])
    )


def returned_strings(session: Session, dag_id: str, run_id: str, ref: TaskInstanceRef) -> list[str]:
    """
    The string return value of one task instance, if it has one (a submit operator returns its Midjourney task id).

    :param session: a metadata database session.
    :param dag_id: the DAG.
    :param run_id: the run.
    :param ref: the task instance.
    """
    rows = _xcom_rows(session, [(dag_id, run_id)]).get((dag_id, run_id), [])
    return [
        str(row.value)
        for row in rows
        if row.task == ref and row.key == "return_value" and isinstance(row.value, (str, int))
    ]


def saved_file(session: Session, dag_id: str, run_id: str, mj_task_id: str, index: int) -> SavedFile | None:
    """
    The saved file ``(mj_task_id, index)`` of one run, or ``None`` when no download of the run saved it.

    Only what a manifest lists is found: the request names a run, a task id and an index, never a path. The
    entry's file name must be a bare name, and the folder joined with it must be exactly the path both the
    manifest and the download's return value recorded.

    :param session: a metadata database session.
    :param dag_id: the DAG (already checked readable by the route).
    :param run_id: the run.
    :param mj_task_id: the Midjourney task.
    :param index: the file's index in its task.
    :raises RefusedFile: the manifest entry points outside its folder.
    """
    rows = _xcom_rows(session, [(dag_id, run_id)]).get((dag_id, run_id), [])
    for saved in _saved_files(rows):
        if (saved.mj_task_id, saved.index) != (mj_task_id, index):
            continue
        name = saved.file_name
        if not name or name in (".", "..") or "/" in name or "\\" in name:
            raise RefusedFile(f"the manifest names {name!r}, not a file of its folder")
        if str(saved.storage_path()) != saved.path:
            raise RefusedFile(f"the manifest's entry points outside its folder ({saved.path})")
        return saved
    return None
