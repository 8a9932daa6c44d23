"""Test set-up: an isolated Airflow home, the local API emulator, and a connection pointing at it."""

from __future__ import annotations

import atexit
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from helpers import REPO, SECRET_KEY, connection_json
from helpers.plugin_entry_point import entry_point_folder

# Airflow reads its home and config at import: point it at a throw-away folder before anything imports it.
_AIRFLOW_HOME = Path(tempfile.mkdtemp(prefix="mjvideo-airflow-home-"))
atexit.register(shutil.rmtree, _AIRFLOW_HOME, ignore_errors=True)
os.environ["AIRFLOW_HOME"] = str(_AIRFLOW_HOME)
os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(REPO / "example_dags")
os.environ.setdefault("AIRFLOW__CORE__UNIT_TEST_MODE", "False")
for _name in [name for name in os.environ if name.startswith("AIRFLOW_CONN_")]:
    del os.environ[_name]

# The Midjourney view's airflow.plugins entry point, for this process and every Airflow process a test starts,
# when the installed metadata predates it (see helpers.plugin_entry_point).
_PLUGIN_ENTRY_POINT = Path(tempfile.mkdtemp(prefix="mjvideo-plugin-entry-point-"))
atexit.register(shutil.rmtree, _PLUGIN_ENTRY_POINT, ignore_errors=True)
if entry_point_folder(_PLUGIN_ENTRY_POINT):
    sys.path.insert(0, str(_PLUGIN_ENTRY_POINT))
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(_PLUGIN_ENTRY_POINT), os.environ.get("PYTHONPATH")]))

from airflow_provider_mjvideo.testing import EmulatorConfig, MidjourneyEmulator  # noqa: E402


@pytest.fixture(scope="session", autouse=True)
def _reschedule_dates_parsed() -> Iterator[None]:
    """
    Below Airflow 3.2, apply apache/airflow#58791 for the whole session: dag.test()'s in-process API client hands a
    reschedule-mode sensor its first reschedule date as the API's ISO string (``model_construct`` skips validation),
    and Airflow's own ``BaseSensorOperator.execute`` then fails with a TypeError (apache/airflow#58777). Real workers
    get the date through the supervisor's validated messages and are not affected.
    """
    from airflow.providers.common.compat.version_compat import AIRFLOW_V_3_2_PLUS

    if AIRFLOW_V_3_2_PLUS:
        yield
        return
    from airflow.sdk.api.client import TaskInstanceOperations
    from airflow.sdk.execution_time.comms import TaskRescheduleStartDate

    unvalidated = TaskInstanceOperations.get_reschedule_start_date

    def validated(self, *args, **kwargs) -> TaskRescheduleStartDate:
        return TaskRescheduleStartDate.model_validate(unvalidated(self, *args, **kwargs).model_dump(warnings=False))

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(TaskInstanceOperations, "get_reschedule_start_date", validated)
        yield


@pytest.fixture
def emulator_config() -> EmulatorConfig:
    """Fast defaults for tests: half-second videos, the recognisable key, bearer auth."""
    return EmulatorConfig(api_key=SECRET_KEY, video_duration=0.5, auth_style="bearer")


@pytest.fixture
def emulator(emulator_config: EmulatorConfig) -> Iterator[MidjourneyEmulator]:
    """A running emulator on 127.0.0.1, stopped after the test."""
    with MidjourneyEmulator(emulator_config) as emu:
        yield emu


@pytest.fixture
def start_emulator() -> Iterator[Callable[..., MidjourneyEmulator]]:
    """``start_emulator(**config_fields)``: start emulators (0.2 s images, 0.3 s videos); stop them all afterwards.

    Also checks that none of them met an internal error.
    """
    started: list[MidjourneyEmulator] = []

    def start(**fields: Any) -> MidjourneyEmulator:
        fields.setdefault("image_duration", 0.2)
        fields.setdefault("video_duration", 0.3)
        emu = MidjourneyEmulator(EmulatorConfig(**fields)).start()
        started.append(emu)
        return emu

    yield start
    for emu in started:
        emu.stop()
        assert emu.errors == []


@pytest.fixture
def mj_conn(emulator: MidjourneyEmulator, monkeypatch: pytest.MonkeyPatch) -> str:
    """Define ``midjourney_default`` (through the environment) for the running emulator; return its id."""
    monkeypatch.setenv("AIRFLOW_CONN_MIDJOURNEY_DEFAULT", connection_json(emulator))
    return "midjourney_default"


@pytest.fixture(scope="session")
def airflow_db() -> Path:
    """Create the SQLite metadata database once (``dag.test()`` needs it)."""
    subprocess.run(
        [sys.executable, "-m", "airflow", "db", "migrate"],
        check=True,
        capture_output=True,
        env=os.environ.copy(),
        timeout=300,
    )
    return _AIRFLOW_HOME


@pytest.fixture
def run_dag(airflow_db: Path, mj_conn: str, tmp_path: Path):
    """
    ``run_dag(dag, **kwargs)``: register an in-memory DAG in the metadata database and ``dag.test()`` it.

    ``dag.test()`` only runs DAGs that are serialized in the database (it re-parses the DAGs folder), so
    DAGs built inside tests are synced first, under the default bundle.
    """

    def run(dag, **kwargs):
        from helpers.dag_runs import sync_dag_to_db

        sync_dag_to_db(dag, tmp_path)
        return dag.test(**kwargs)

    return run


@pytest.fixture
def hook(mj_conn: str):
    """A ``MidjourneyHook`` on the emulator with tiny backoff, so retry tests stay fast."""
    from airflow_provider_mjvideo.hooks.midjourney import MidjourneyHook

    return MidjourneyHook(mj_conn, retry_delay=0.01, retry_max_delay=0.05)


@pytest.fixture
def memory_store(monkeypatch: pytest.MonkeyPatch):
    """
    A :class:`helpers.storage.RecordingMemoryFileSystem` attached as ``memory://mjtest@…``, the way a provider
    attaches its store (``attach(protocol="memory", conn_id="mjtest", fs=...)``), undone after the test. Airflow 3.0
    does not read the connection id from a URI, so it is attached as plain ``memory://`` too.
    """
    from airflow.sdk.io import store as store_module
    from helpers.storage import RecordingMemoryFileSystem

    fs = RecordingMemoryFileSystem()
    for alias, conn_id in (("memory-mjtest", "mjtest"), ("memory", None)):
        monkeypatch.setitem(store_module._STORE_CACHE, alias, store_module.ObjectStore("memory", conn_id, fs))
    return fs


@pytest.fixture
def local_file_opens():
    """``with local_file_opens() as log:`` records every local file the process opens or lists in the block."""
    from helpers.storage import local_file_events

    return local_file_events().recording


@pytest.fixture(scope="session")
def airflow_api(airflow_db: Path) -> Iterator[Any]:
    """
    Airflow's API server app in this process (``helpers.api_app.InProcessApi``): plugins mounted, the per-DAG
    test auth manager (``helpers.auth``) in front, users ``admin``, ``viewer`` and ``outsider``.
    """
    from helpers.api_app import APP_ENV, InProcessApi

    with pytest.MonkeyPatch.context() as patch:
        for name, value in APP_ENV.items():
            patch.setenv(name, value)
        patch.setenv("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE", str(airflow_db / "passwords.json"))
        yield InProcessApi()
        from airflow.api_fastapi.app import purge_cached_app

        purge_cached_app()
