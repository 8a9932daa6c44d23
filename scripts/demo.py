"""
The main job: run the chain example DAG against the local emulator, with no network and no API key.

Called by ``./dev.sh demo``. It uses a throw-away Airflow home under ``.airflow-home/`` (SQLite),
starts the emulator on 127.0.0.1, points the ``midjourney_default`` connection at it through the
environment, runs ``dag.test()`` of ``example_dags/mjvideo_chain.py``, and prints the chain of
Midjourney task ids and the final video URLs.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
DEMO_KEY = "demo-key-not-secret"


def _prepare_airflow_home(home: Path) -> None:
    home.mkdir(parents=True, exist_ok=True)
    os.environ["AIRFLOW_HOME"] = str(home)
    os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
    os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(REPO / "example_dags")
    os.environ.setdefault("AIRFLOW__LOGGING__LOGGING_LEVEL", "WARNING")
    subprocess.run([sys.executable, "-m", "airflow", "db", "migrate"], check=True, capture_output=True)


def _load_dag(path: Path) -> Any:
    spec = importlib.util.spec_from_file_location(path.stem, path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.dag


def _return_values(dag_id: str, run_id: str) -> dict[str, Any]:
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        rows = session.scalars(
            select(XComModel).where(
                XComModel.dag_id == dag_id, XComModel.run_id == run_id, XComModel.key == "return_value"
            )
        ).all()
        return {row.task_id: XComModel.deserialize_value(row) for row in rows}


def main(argv: list[str] | None = None) -> int:
    """Run the demo; return the process exit code."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    parser.add_argument("--video-seconds", type=float, default=3.0, help="how long the emulator takes per video")
    args = parser.parse_args(argv)

    _prepare_airflow_home(REPO / ".airflow-home")
    os.environ["MJVIDEO_POLL_INTERVAL"] = "1"

    from airflow_provider_mjvideo.testing import EmulatorConfig, MidjourneyEmulator

    emulator = MidjourneyEmulator(EmulatorConfig(api_key=DEMO_KEY, video_duration=args.video_seconds)).start()
    try:
        os.environ["AIRFLOW_CONN_MIDJOURNEY_DEFAULT"] = emulator.connection_json()
        print(f"Emulator listening on {emulator.url}")
        dag = _load_dag(REPO / "example_dags" / "mjvideo_chain.py")
        started = time.monotonic()
        run = dag.test()
        elapsed = time.monotonic() - started
        values = _return_values(dag.dag_id, run.run_id)
        print()
        print(f"DAG run {run.run_id}: {run.state} in {elapsed:.1f} s")
        print("Chain of Midjourney task ids:")
        for step in ("generate", "extend_1", "extend_2"):
            parent = (emulator.tasks.get(str(values.get(step)), {}) or {}).get("parent_id")
            note = f"(extends {parent}, clip 0)" if parent else "(new video from the first frame)"
            print(f"  {step:9s} {values.get(step)} {note}")
        final = values.get("wait_extend_2") or {}
        print("Final video URLs:")
        for url in final.get("video_urls", []):
            print(f"  {url}")
        print(f"Emulator: {emulator.counters['submit_accepted']} submissions, {emulator.count('fetch')} polls")
        ok = str(run.state) in ("success", "DagRunState.SUCCESS") and len(final.get("video_urls", [])) == 4
        return 0 if ok else 1
    finally:
        emulator.stop()


if __name__ == "__main__":
    sys.exit(main())
