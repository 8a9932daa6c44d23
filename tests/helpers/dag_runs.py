"""Helpers for tests that run DAGs with ``dag.test()`` and then read what the run left in the metadata database.

``dag.test()`` needs its DAG in the configured DAG bundle, so a test DAG is written to a temporary folder that
stands in for the DAG folder (``airflow.settings.DAGS_FOLDER``, which the ``dags-folder`` bundle reads on every
``dag.test()``), then loaded from there with importlib: the task objects that run are those of the loaded module.
"""

from __future__ import annotations

import importlib.util
import itertools
import textwrap
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

_module_numbers = itertools.count()


def load_dag_file(path: Path) -> ModuleType:
    """Import ``path`` as a fresh module (a new name every time, so module-level code runs again)."""
    name = f"mjvideo_test_dag_{path.stem}_{next(_module_numbers)}"
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def write_dag(folder: Path, monkeypatch: pytest.MonkeyPatch, file_name: str, source: str) -> ModuleType:
    """Write ``source`` as ``folder/file_name``, make ``folder`` the DAG folder for this test, and load it."""
    import airflow.settings

    folder.mkdir(parents=True, exist_ok=True)
    path = folder / file_name
    path.write_text(textwrap.dedent(source))
    monkeypatch.setattr(airflow.settings, "DAGS_FOLDER", str(folder))
    return load_dag_file(path)


def dag_bag(**kwargs: Any) -> Any:
    """A ``DagBag(**kwargs)``; Airflow 3.2 moved the class from ``airflow.models.dagbag`` to ``dag_processing``."""
    from airflow.providers.common.compat.version_compat import AIRFLOW_V_3_2_PLUS

    if AIRFLOW_V_3_2_PLUS:
        from airflow.dag_processing.dagbag import DagBag
    else:
        from airflow.models.dagbag import DagBag
    return DagBag(**kwargs)


def sync_dag_to_db(dag: Any, folder: Path) -> None:
    """Serialize an in-memory ``dag`` into the metadata database under the ``dags-folder`` bundle."""
    from airflow.dag_processing.bundles.manager import DagBundlesManager
    from airflow.providers.common.compat.version_compat import AIRFLOW_V_3_2_PLUS

    DagBundlesManager().sync_bundles_to_db()
    bag = dag_bag(dag_folder=folder, collect_dags=False)
    bag.bag_dag(dag)
    # Airflow 3.2 replaced the DagBag.sync_to_db method with the sync_bag_to_db function.
    if AIRFLOW_V_3_2_PLUS:
        from airflow.dag_processing.dagbag import sync_bag_to_db

        sync_bag_to_db(bag, "dags-folder", None)
    else:
        # Airflow 3.0's DagBag sets relative_fileloc only on DAGs it imports from files (the same way: the file
        # path without a bundle path), and writing a DAG without one fails.
        if dag.relative_fileloc is None:
            dag.relative_fileloc = dag.fileloc
        bag.sync_to_db("dags-folder", None)


def task_instances(dag_id: str, run_id: str) -> dict[tuple[str, int], Any]:
    """The run's task instances keyed by ``(task_id, map_index)`` (detached copies of the columns that matter)."""
    from types import SimpleNamespace

    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session

    with create_session() as session:
        rows = session.query(TaskInstance).filter(TaskInstance.dag_id == dag_id, TaskInstance.run_id == run_id).all()
        return {
            (ti.task_id, ti.map_index): SimpleNamespace(
                task_id=ti.task_id, map_index=ti.map_index, state=ti.state, try_number=ti.try_number
            )
            for ti in rows
        }


def xcoms(dag_id: str, run_id: str, *, raw: bool = False) -> dict[tuple[str, int, str], Any]:
    """
    Every XCom of the run keyed by ``(task_id, map_index, key)``: deserialized, or with ``raw`` the column's value.

    ``XComModel.deserialize_value`` decodes once more what the JSON column already decoded, so a task id pushed
    as the string ``"17956238781270001"`` comes back from it as an int; ``raw=True`` shows what was stored.
    """
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    with create_session() as session:
        rows = session.query(XComModel).filter(XComModel.dag_id == dag_id, XComModel.run_id == run_id).all()
        return {
            (row.task_id, row.map_index, row.key): row.value if raw else XComModel.deserialize_value(row)
            for row in rows
        }


def rendered_fields(dag_id: str, run_id: str) -> dict[tuple[str, int], Any]:
    """The rendered template fields of every task instance of the run, keyed by ``(task_id, map_index)``."""
    from airflow.models.renderedtifields import RenderedTaskInstanceFields
    from airflow.utils.session import create_session

    with create_session() as session:
        rows = (
            session.query(RenderedTaskInstanceFields)
            .filter(RenderedTaskInstanceFields.dag_id == dag_id, RenderedTaskInstanceFields.run_id == run_id)
            .all()
        )
        return {(row.task_id, row.map_index): row.rendered_fields for row in rows}


def trigger_rows() -> list[tuple[str, Any]]:
    """``(classpath, kwargs)`` of every row left in the ``trigger`` table."""
    from airflow.models.trigger import Trigger
    from airflow.utils.session import create_session

    with create_session() as session:
        return [(row.classpath, row.kwargs) for row in session.query(Trigger).all()]


def xcom_value(dag_run: Any, task_id: str, key: str = "return_value", map_index: int = -1) -> Any:
    """The XCom ``key`` of ``task_id`` in a finished ``dag_run`` as stored (decoded once), or ``None``."""
    return xcoms(dag_run.dag_id, dag_run.run_id, raw=True).get((task_id, map_index, key))


def task_states(dag_run: Any) -> dict[tuple[str, int], tuple[str, int]]:
    """``{(task_id, map_index): (state, try_number)}`` of every task instance of a finished ``dag_run``."""
    return {(ti.task_id, ti.map_index): (str(ti.state), ti.try_number) for ti in dag_run.get_task_instances()}


def asset_events(dag_id: str, run_id: str) -> list[Any]:
    """
    The asset events a run's tasks produced, in the order they were recorded: detached copies with the asset's
    ``name`` and ``uri``, ``extra`` and the ``source_*`` columns.
    """
    from types import SimpleNamespace

    from airflow.models.asset import AssetEvent, AssetModel
    from airflow.utils.session import create_session

    with create_session() as session:
        rows = (
            session.query(AssetEvent, AssetModel)
            .join(AssetModel, AssetModel.id == AssetEvent.asset_id)
            .filter(AssetEvent.source_dag_id == dag_id, AssetEvent.source_run_id == run_id)
            .order_by(AssetEvent.id)
            .all()
        )
        return [
            SimpleNamespace(
                name=asset.name,
                uri=asset.uri,
                extra=event.extra,
                source_dag_id=event.source_dag_id,
                source_run_id=event.source_run_id,
                source_task_id=event.source_task_id,
                source_map_index=event.source_map_index,
            )
            for event, asset in rows
        ]
