"""
The main job: from a prompt alone to saved clips, against the local emulator, with no network and no API key.

Called by ``./dev.sh demo``. It uses a throw-away Airflow home under ``.airflow-home/`` (SQLite), starts the
emulator on 127.0.0.1, points the ``midjourney_default`` connection at it through the environment, runs
``dag.test()`` of ``example_dags/mjvideo_from_prompt.py`` (imagine → upscale → animate → extend → save), and
prints the chain of Midjourney task ids, the pictures, the video URLs, the requests per route, and where the
saved pictures, clips and their gallery are (``artifacts/demo-videos/`` by default).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
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


def _return_values(dag_id: str, run_id: str) -> dict[tuple[str, int], Any]:
    """Every return value of the run, keyed by (task id, map index), each JSON-decoded once."""
    from airflow.utils.session import create_session
    from sqlalchemy import text

    with create_session() as session:
        rows = session.execute(
            text(
                "SELECT task_id, map_index, value FROM xcom WHERE dag_id = :d AND run_id = :r AND key = 'return_value'"
            ),
            {"d": dag_id, "r": run_id},
        ).all()
    return {(task_id, map_index): json.loads(value) for task_id, map_index, value in rows}


def main(argv: list[str] | None = None) -> int:
    """Run the demo; return the process exit code."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    parser.add_argument("--video-seconds", type=float, default=3.0, help="how long the emulator takes per job")
    args = parser.parse_args(argv)

    _prepare_airflow_home(REPO / ".airflow-home")
    os.environ["MJVIDEO_POLL_INTERVAL"] = "1"
    os.environ.setdefault("AIRFLOW_VAR_MJVIDEO_DESTINATION", (REPO / "artifacts" / "demo-videos").as_uri())

    from airflow_provider_mjvideo.testing import EmulatorConfig, MidjourneyEmulator

    emulator = MidjourneyEmulator(
        EmulatorConfig(api_key=DEMO_KEY, video_duration=args.video_seconds, image_duration=args.video_seconds)
    ).start()
    try:
        os.environ["AIRFLOW_CONN_MIDJOURNEY_DEFAULT"] = emulator.connection_json()
        print(f"Emulator listening on {emulator.url}")
        dag = _load_dag(REPO / "example_dags" / "mjvideo_from_prompt.py")
        started = time.monotonic()
        run = dag.test()
        elapsed = time.monotonic() - started
        values = _return_values(dag.dag_id, run.run_id)
        print()
        print(f"DAG run {run.run_id}: {run.state} in {elapsed:.1f} s")
        print("Chain of Midjourney task ids:")
        notes = {
            "imagine": "a 2x2 grid from the prompt",
            "upscale": "image 0 of the grid (U1) upscaled",
            "animate": "a video whose first frame is the upscale",
            "extend": "clip 0 of that video, extended",
        }
        for step, note in notes.items():
            print(f"  {step:8s} {values.get((step, -1))}  ({note})")
        print("Pictures:")
        for wait in ("wait_imagine", "wait_upscale"):
            for url in (values.get((wait, -1)) or {}).get("image_urls", [])[:1]:
                print(f"  {url}")
        print("Video URLs:")
        for wait in ("wait_animate", "wait_extend"):
            for url in (values.get((wait, -1)) or {}).get("video_urls", []):
                print(f"  {url}")
        saved = [entry for (task_id, _), manifest in sorted(values.items()) if task_id == "save" for entry in manifest]
        folders = sorted({entry["path"].rsplit("/", 1)[0] for entry in saved})
        clips = [entry for entry in saved if entry["path"].endswith(".mp4")]
        size = sum(entry["bytes"] for entry in saved)
        print(f"Saved {len(saved) - len(clips)} pictures and {len(clips)} clips ({size} bytes) to:")
        for folder in folders:
            print(f"  {folder}/")
            print(f"  gallery:  {folder}/index.html")
            print(f"  manifest: {folder}/manifest.json")
        routes = ("imagine", "action", "modal", "submit", "fetch", "list", "media")
        print("Requests to the emulator: " + ", ".join(f"{route} {emulator.count(route)}" for route in routes))
        ok = str(run.state) in ("success", "DagRunState.SUCCESS") and len(clips) == 8
        return 0 if ok else 1
    finally:
        emulator.stop()


if __name__ == "__main__":
    sys.exit(main())
