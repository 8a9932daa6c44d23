"""
End to end with real Airflow processes: api-server, scheduler (LocalExecutor), dag-processor, triggerer.

Runs ``example_dags/mjvideo_chain.py``, then ``example_dags/mjvideo_from_prompt.py``, against the emulator
on SQLite in a fresh ``AIRFLOW_HOME``. The
emulator's videos never finish on their own: the test completes each one as soon as its sensor is seen
``deferred`` in the metadata database, so every wait provably goes through the triggerer, whatever
the scheduling latency of the machine.

Asset scheduling, which ``dag.test()`` cannot show: the chain's downloads update the ``mjvideo_clips`` asset,
and the scheduler runs ``example_dags/mjvideo_publish.py`` on their events; its runs together publish every clip
the chain saved, with the sha256 the downloads recorded. ``mjvideo-usage`` then reads the chain's usage from the
deployment's database.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from helpers import REPO, SECRET_KEY, connection_json
from helpers.airflow_processes import (
    AirflowDeployment,
    base_env,
    free_port,
    is_loopback,
    port_open,
    tcp_peers,
    wait_for,
)

from airflow_provider_mjvideo.testing import EmulatorConfig, MidjourneyEmulator

pytestmark = pytest.mark.slow

DAG_ID = "mjvideo_chain"
PROMPT_DAG_ID = "mjvideo_from_prompt"
PUBLISH_DAG_ID = "mjvideo_publish"
SUBMITS = ("generate", "extend_1", "extend_2")
WAITS = ("wait_generate", "wait_extend_1", "wait_extend_2")
COMPONENTS = ("api-server", "scheduler", "dag-processor", "triggerer")
#: Bounds (seconds); generous for a loaded 2-core machine.
MIGRATE_TIMEOUT = 300
STARTUP_TIMEOUT = 180
RUN_TIMEOUT = 240
#: The record the Task SDK's ``_defer_task`` writes to the task log (JSON lines) when a task defers, with the
#: task's dag_id, task_id and run_id (the trailing space is Airflow's own).
DEFERRAL_EVENT = "Pausing task as DEFERRED. "


def _json_records(text: str) -> list[dict[str, object]]:
    """The JSON objects of a task log, one a line (Airflow 3 writes task logs as JSON lines)."""
    records = []
    for line in text.splitlines():
        with contextlib.suppress(ValueError):
            record = json.loads(line)
            if isinstance(record, dict):
                records.append(record)
    return records


@pytest.fixture
def slow_emulator() -> Iterator[MidjourneyEmulator]:
    """An emulator whose videos only finish when the test says so (see the module docstring)."""
    with MidjourneyEmulator(EmulatorConfig(api_key=SECRET_KEY, video_duration=3600, auth_style="bearer")) as emu:
        yield emu


@pytest.fixture
def airflow_deployment(tmp_path: Path, slow_emulator: MidjourneyEmulator) -> Iterator[AirflowDeployment]:
    home = tmp_path / "airflow-home"
    home.mkdir()
    out_dir = tmp_path / "process-output"
    out_dir.mkdir()
    port = free_port()
    env = base_env(home, port, REPO / "example_dags")
    env.update(
        {
            "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
            "AIRFLOW__CORE__PARALLELISM": "4",
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
            "AIRFLOW__DAG_PROCESSOR__PARSING_PROCESSES": "1",
            "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
            "AIRFLOW__DAG_PROCESSOR__BUNDLE_REFRESH_CHECK_INTERVAL": "1",
            "AIRFLOW__SCHEDULER__SCHEDULER_IDLE_SLEEP_TIME": "0.5",
            "AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK": "False",
            "AIRFLOW_CONN_MIDJOURNEY_DEFAULT": connection_json(slow_emulator),
            "MJVIDEO_POLL_INTERVAL": "1",
            "AIRFLOW_VAR_MJVIDEO_DESTINATION": (tmp_path / "videos").as_uri(),
        }
    )
    deployment = AirflowDeployment(home=home, env=env, out_dir=out_dir, dag_id=DAG_ID)
    survivors: list[int] = []
    try:
        yield deployment
    finally:
        survivors = deployment.stop()
    assert not survivors, f"Airflow processes survived the teardown: {survivors}"


def test_chain_runs_on_real_airflow_with_deferred_waits(
    airflow_deployment: AirflowDeployment, slow_emulator: MidjourneyEmulator
) -> None:
    deployment, emu = airflow_deployment, slow_emulator
    started = time.monotonic()
    phases: dict[str, float] = {}
    try:
        deployment.cli("db", "migrate", timeout=MIGRATE_TIMEOUT)
        phases["db migrate"] = time.monotonic() - started
        for name in COMPONENTS:
            deployment.start(name)
        port = int(deployment.env["AIRFLOW__API__PORT"])
        wait_for("the api-server port", lambda: port_open(port), STARTUP_TIMEOUT, deployment)
        for dag_id in (DAG_ID, PUBLISH_DAG_ID):
            wait_for(
                f"{dag_id} to be parsed",
                lambda dag_id=dag_id: deployment.query("SELECT 1 FROM serialized_dag WHERE dag_id = ?", dag_id),
                STARTUP_TIMEOUT,
                deployment,
            )
        phases["components up, DAGs parsed"] = time.monotonic() - started
        deployment.cli("dags", "unpause", PUBLISH_DAG_ID)  # before any event, so that none is left unqueued
        deployment.cli("dags", "unpause", DAG_ID)
        deployment.cli("dags", "trigger", DAG_ID, "--run-id", "e2e")
        phases["unpaused and triggered"] = time.monotonic() - started

        seen_deferred: dict[str, float] = {}
        peers: set[str] = set()

        def progress() -> str | None:
            peers.update(tcp_peers(deployment.session_pids()))
            states = dict(deployment.query("SELECT task_id, state FROM task_instance WHERE dag_id = ?", DAG_ID))
            tasks = sorted(emu.tasks.values(), key=lambda task: task["submit_mono"])
            for index, wait in enumerate(WAITS):
                if states.get(wait) == "deferred" and wait not in seen_deferred:
                    seen_deferred[wait] = time.monotonic() - started
                    # The sensor polled once, found the video in progress and deferred: now let it finish.
                    emu.complete_task(tasks[index]["id"])
            rows = deployment.query("SELECT state FROM dag_run WHERE dag_id = ? AND run_id = 'e2e'", DAG_ID)
            state = rows[0][0] if rows else None
            return state if state in ("success", "failed") else None

        run_state = wait_for(f"the {DAG_ID} run to finish", progress, RUN_TIMEOUT, deployment)
        phases["run finished"] = time.monotonic() - started

        # The run and every task succeeded.
        assert run_state == "success"
        states = deployment.query("SELECT task_id, map_index, state FROM task_instance WHERE run_id = 'e2e'")
        expected = [(task_id, -1, "success") for task_id in (*SUBMITS, *WAITS, "chain_ids")]
        expected += [("save_clips", index, "success") for index in range(3)]
        assert sorted(states) == sorted(expected)

        # Each wait was seen deferred in the metadata database, logged its one deferral, and its success.
        assert sorted(seen_deferred) == sorted(WAITS)
        xcoms = {
            task_id: json.loads(value)
            for task_id, value in deployment.query(
                "SELECT task_id, value FROM xcom WHERE run_id = 'e2e' AND key = 'return_value'"
            )
        }
        ids = [xcoms[task_id] for task_id in SUBMITS]
        for wait, mj_id in zip(WAITS, ids, strict=True):
            logs = sorted((deployment.home / "logs").rglob(f"*run_id=e2e/task_id={wait}/*"))
            text = "\n".join(path.read_text(errors="replace") for path in logs if path.is_file())
            deferrals = [
                record
                for record in _json_records(text)
                if record.get("event") == DEFERRAL_EVENT
                and (record.get("dag_id"), record.get("task_id"), record.get("run_id")) == (DAG_ID, wait, "e2e")
            ]
            assert len(deferrals) == 1, f"{wait}: not exactly one deferral in its log:\n{text[-3000:]}"
            assert f"Midjourney task {mj_id} succeeded" in text

        # Wait summaries: four clips each, all on the emulator.
        for wait, mj_id in zip(WAITS, ids, strict=True):
            summary = xcoms[wait]
            assert summary["id"] == mj_id
            assert summary["status"] == "SUCCESS"
            assert summary["video_urls"] == [f"{emu.root_url}/media/{mj_id}/{i}.mp4" for i in range(4)]

        # Exactly three paid submissions, chained through taskId.
        assert emu.counters["submit_accepted"] == 3
        assert emu.counters["submit_rejected"] == 0
        submits = [request.json for request in emu.requests_to("submit")]
        assert len(submits) == 3
        assert [body.get("taskId") for body in submits] == [None, ids[0], ids[1]]
        assert [body.get("action") for body in submits] == [None, "extend", "extend"]
        assert [body.get("index") for body in submits] == [None, 0, 0]
        assert ids == sorted(emu.tasks, key=lambda task_id: emu.tasks[task_id]["submit_mono"])
        assert not emu.errors

        # The run ended by saving the 12 clips of the chain (3 videos, 4 clips each) and a gallery.
        saved = [
            entry
            for (value,) in deployment.query(
                "SELECT value FROM xcom WHERE run_id = 'e2e' AND task_id = 'save_clips' AND key = 'return_value'"
            )
            for entry in json.loads(value)
        ]
        assert sorted((Path(entry["path"].removeprefix("file://")).name) for entry in saved) == sorted(
            f"{mj_id}_{index}.mp4" for mj_id in ids for index in range(4)
        )
        for entry in saved:
            path = Path(entry["path"].removeprefix("file://"))
            assert path.stat().st_size == entry["bytes"] > 0
        folder = Path(saved[0]["path"].removeprefix("file://")).parent
        assert (folder / "index.html").read_text().count("<video") == 12

        # Assets: one event per download, each listing its clips with the sizes and hashes the downloads recorded.
        clips = sorted((entry["path"], entry["bytes"], entry["sha256"]) for entry in saved)
        events = deployment.query(
            "SELECT e.source_task_id, e.source_map_index, e.extra FROM asset_event e JOIN asset a ON a.id = e.asset_id"
            " WHERE a.name = 'mjvideo_clips' AND e.source_dag_id = ? AND e.source_run_id = 'e2e'",
            DAG_ID,
        )
        assert sorted((task_id, index) for task_id, index, _extra in events) == [("save_clips", i) for i in range(3)]
        extras = [json.loads(extra) for _task, _index, extra in events]
        assert sorted((c["path"], c["bytes"], c["sha256"]) for e in extras for c in e["clips"]) == clips
        assert sorted(e["mj_task_id"] for e in extras) == sorted(ids)
        print(f"\nOne asset event's extra: {json.dumps(extras[0])}")

        # The scheduler ran the publish DAG on those events; its runs together verified and published every clip.
        def publication(at_least: int = 0) -> tuple[list[tuple[str, str]], list[tuple[Any, ...]]] | None:
            runs = deployment.query("SELECT run_type, state FROM dag_run WHERE dag_id = ?", PUBLISH_DAG_ID)
            seen = [
                (clip["path"], clip["bytes"], clip["sha256"], clip["verified"], clip["source_run_id"])
                for summary in sorted((folder / "published").glob("*.json"))
                for clip in json.loads(summary.read_text())["clips"]
            ]
            settled = runs and all(state in ("success", "failed") for _type, state in runs)
            return (runs, seen) if settled and len(seen) >= at_least else None

        runs, seen = wait_for(f"{PUBLISH_DAG_ID} to run on the chain's clips", publication, RUN_TIMEOUT, deployment)
        flushed = len(seen) < len(clips)
        if flushed:
            # Events of downloads that finish at the same moment can wait for the asset's next event: the scheduler
            # deletes the queue row that later events merged into while it creates the run for the first
            # (apache/airflow#54659; seen here on 3.3.2 with SQLite). One more event, as a person would post it from
            # the UI, lets the next run list them.
            ((asset_id,),) = deployment.query("SELECT id FROM asset WHERE name = 'mjvideo_clips'")
            posted = deployment.api("POST", "/assets/events", json={"asset_id": asset_id, "extra": {"note": "flush"}})
            assert posted.status_code == 200, posted.text
            runs, seen = wait_for(
                f"{PUBLISH_DAG_ID} to publish the rest", lambda: publication(len(clips)), RUN_TIMEOUT, deployment
            )
        phases["clips published"] = time.monotonic() - started
        assert sorted(seen) == sorted((*clip, True, "e2e") for clip in clips)  # each clip once, verified
        assert 1 <= len(runs) <= 4
        assert set(runs) == {("asset_triggered", "success")}
        print(f"{PUBLISH_DAG_ID}: {len(runs)} asset-triggered run(s) published {len(seen)} clips (flushed: {flushed})")

        # Usage, read from the deployment's database by the CLI: the emulator's accepted submissions, exactly.
        usage = subprocess.run(
            [sys.executable, "-m", "airflow_provider_mjvideo.usage_cli", "--dag-id", DAG_ID, "--json"],
            env=deployment.env, capture_output=True, text=True, timeout=120, check=True,
        )  # fmt: skip
        lines = usage.stdout.splitlines()  # the JSON document is the output's last lines
        rows = json.loads("\n".join(lines[next(i for i, line in enumerate(lines) if line in ("[", "[]")) :]))
        assert [(r["dag_id"], r["conn_id"], r["submits"], r["reattached"]) for r in rows] == [
            (DAG_ID, "midjourney_default", emu.counters["submit_accepted"], 0)
        ]

        # The prompt-to-video example on the same deployment: imagine, upscale, animate, extend, save.
        prompt_waits = ("wait_imagine", "wait_upscale", "wait_animate", "wait_extend")
        deployment.cli("dags", "unpause", PROMPT_DAG_ID)
        wait_for(
            f"{PROMPT_DAG_ID} to be parsed",
            lambda: deployment.query("SELECT 1 FROM serialized_dag WHERE dag_id = ?", PROMPT_DAG_ID),
            STARTUP_TIMEOUT,
            deployment,
        )
        deployment.cli("dags", "trigger", PROMPT_DAG_ID, "--run-id", "prompt-e2e", "--conf", '{"index": 1}')
        prompt_deferred: set[str] = set()

        def prompt_progress() -> str | None:
            peers.update(tcp_peers(deployment.session_pids()))
            states = dict(
                deployment.query(
                    "SELECT task_id, state FROM task_instance WHERE dag_id = ? AND run_id = 'prompt-e2e'",
                    PROMPT_DAG_ID,
                )
            )
            ours = [task for task in emu.tasks.values() if "/prompt-e2e/" in str(task["state"])]
            ours.sort(key=lambda task: task["submit_mono"])
            for index, wait in enumerate(prompt_waits):
                if states.get(wait) == "deferred" and wait not in prompt_deferred and index < len(ours):
                    prompt_deferred.add(wait)
                    emu.complete_task(ours[index]["id"])
            rows = deployment.query(
                "SELECT state FROM dag_run WHERE dag_id = ? AND run_id = 'prompt-e2e'", PROMPT_DAG_ID
            )
            state = rows[0][0] if rows else None
            return state if state in ("success", "failed") else None

        assert wait_for(f"the {PROMPT_DAG_ID} run to finish", prompt_progress, RUN_TIMEOUT, deployment) == "success"
        phases["prompt run finished"] = time.monotonic() - started
        assert prompt_deferred == set(prompt_waits)
        assert [emu.counters["accepted"][route] for route in ("imagine", "action", "submit")] == [1, 1, 3 + 2]
        prompt_values = {
            task_id: json.loads(value)
            for task_id, value in deployment.query(
                "SELECT task_id, value FROM xcom WHERE run_id = 'prompt-e2e' AND key = 'return_value' "
                "AND map_index = -1"
            )
        }
        (press,) = [r.json for r in emu.requests_to("action")]
        assert press["taskId"] == prompt_values["imagine"]
        assert "::upsample::2::" in press["customId"]  # index 1 is Midjourney's U2
        animate_body = next(r.json for r in emu.requests_to("submit") if "/prompt-e2e/animate" in r.json["state"])
        assert animate_body["image"] == prompt_values["wait_upscale"]["image_url"]
        prompt_saved = [
            entry
            for (value,) in deployment.query(
                "SELECT value FROM xcom WHERE run_id = 'prompt-e2e' AND task_id = 'save' AND key = 'return_value'"
            )
            for entry in json.loads(value)
        ]
        assert sum(entry["path"].endswith(".mp4") for entry in prompt_saved) == 8
        assert all(
            Path(entry["path"].removeprefix("file://")).stat().st_size == entry["bytes"] for entry in prompt_saved
        )
        prompt_usage = subprocess.run(
            [sys.executable, "-m", "airflow_provider_mjvideo.usage_cli", "--dag-id", PROMPT_DAG_ID, "--json"],
            env=deployment.env, capture_output=True, text=True, timeout=120, check=True,
        )  # fmt: skip
        lines = prompt_usage.stdout.splitlines()
        rows = json.loads("\n".join(lines[next(i for i, line in enumerate(lines) if line in ("[", "[]")) :]))
        assert [(r["dag_id"], r["submits"], r["reattached"]) for r in rows] == [(PROMPT_DAG_ID, 4, 0)]  # 4 paid jobs

        # Only loopback peers were ever seen on the components' sockets.
        assert peers, "no TCP connection of the Airflow processes was observed"
        assert all(is_loopback(peer) for peer in peers), f"non-loopback peers: {peers}"
    except BaseException:
        print(deployment.diagnostics())
        raise
    finally:
        wall = time.monotonic() - started
        print(f"\n{DAG_ID} end-to-end wall time: {wall:.1f} s; phases (cumulative): ", end="")
        print(", ".join(f"{name} {seconds:.1f} s" for name, seconds in phases.items()))
