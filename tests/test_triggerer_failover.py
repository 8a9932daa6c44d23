"""
Real triggerers lose, move and restart deferred waits; only a person's stop cancels the paid video.

One deployment (api-server, scheduler with the LocalExecutor, dag-processor, two triggerers, SQLite) and the
emulator (trueai flavour, the one with a cancel route). Its videos only finish when the test says so, so every
phase happens while they are still being made:

1. **A stalled triggerer** (``SIGSTOP``) loses its six waits to the other one; woken (``SIGCONT``) while the
   videos are still running, it stops its copies of those triggers with Airflow's "user action" message,
   which calls our ``on_kill``: 0 cancel requests, and every wait then succeeds.
2. **A triggerer restart** (SIGTERM, start again) mid-wait: 0 cancel requests, the waits resume.
3. **A person marks a deferred wait failed** through the REST API: exactly 1 cancel request, for that video.
"""

from __future__ import annotations

import contextlib
import re
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers import SECRET_KEY, connection_json
from helpers.airflow_processes import (
    AirflowDeployment,
    base_env,
    deferral_exits_seen,
    free_port,
    port_open,
    wait_for,
)

from airflow_provider_mjvideo.testing import EmulatorConfig, MidjourneyEmulator

pytestmark = pytest.mark.slow

DAG_ID = "mjvideo_failover"
WAITS = 6
#: Lowered so that a stalled triggerer loses its triggers in seconds (Airflow's default is 30 s).
HEALTH_THRESHOLD = 6
MIGRATE_TIMEOUT = 300
STARTUP_TIMEOUT = 180
PHASE_TIMEOUT = 180
#: The line Airflow 3.3's triggerer logs before it calls a trigger's on_kill().
ON_KILL_LINE = "Trigger cancelled by user action, invoking on_kill"

_DAG_FILE = f'''
import pendulum
from airflow.sdk import DAG

from airflow_provider_mjvideo.operators.video import SubmitVideoOperator
from airflow_provider_mjvideo.sensors.video import MidjourneyTaskSensor

with DAG("{DAG_ID}", schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC"), catchup=False) as dag:
    submit = SubmitVideoOperator.partial(
        task_id="submit", image="https://cdn.example.com/first.png", motion="low"
    ).expand(prompt=[f"shot {{index}}" for index in range({WAITS})])
    MidjourneyTaskSensor.partial(task_id="wait", deferrable=True, poke_interval=1, timeout=900).expand(
        mj_task_id=submit.output
    )
'''


@pytest.fixture
def slow_emulator() -> Iterator[MidjourneyEmulator]:
    """Videos that only finish when the test completes them."""
    with MidjourneyEmulator(
        EmulatorConfig(api_key=SECRET_KEY, video_duration=3600, auth_style="bearer", flavor="trueai")
    ) as emu:
        yield emu


@pytest.fixture
def deployment(tmp_path: Path, slow_emulator: MidjourneyEmulator) -> Iterator[AirflowDeployment]:
    home = tmp_path / "airflow-home"
    home.mkdir()
    out_dir = tmp_path / "process-output"
    out_dir.mkdir()
    dags = tmp_path / "dags"
    dags.mkdir()
    (dags / "mjvideo_failover.py").write_text(_DAG_FILE)
    env = base_env(home, free_port(), dags)
    env.update(
        {
            "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
            "AIRFLOW__CORE__PARALLELISM": "4",
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
            "AIRFLOW__DAG_PROCESSOR__PARSING_PROCESSES": "1",
            "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
            "AIRFLOW__SCHEDULER__SCHEDULER_IDLE_SLEEP_TIME": "0.5",
            "AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK": "False",
            "AIRFLOW__TRIGGERER__JOB_HEARTBEAT_SEC": "1",
            "AIRFLOW__TRIGGERER__TRIGGERER_HEALTH_CHECK_THRESHOLD": str(HEALTH_THRESHOLD),
            # A triggerer answers its first task-state look-up only after building its in-process execution API
            # (5-12 s on a busy 2-core machine); the default 30 s would give on_kill's look-up 15 s.
            "AIRFLOW__TRIGGERER__ON_KILL_TIMEOUT": "60",
            "AIRFLOW_CONN_MIDJOURNEY_DEFAULT": connection_json(slow_emulator),
        }
    )
    deployment = AirflowDeployment(home=home, env=env, out_dir=out_dir, dag_id=DAG_ID)
    survivors: list[int] = []
    try:
        yield deployment
    finally:
        # A frozen process ignores SIGTERM until woken: wake everything before stopping it.
        for name in list(deployment.procs):
            with contextlib.suppress(ProcessLookupError):
                deployment.signal(name, signal.SIGCONT)
        survivors = deployment.stop()
    assert not survivors, f"Airflow processes survived the teardown: {survivors}"


def running_triggerer_jobs(deployment: AirflowDeployment) -> list[int]:
    rows = deployment.query("SELECT id FROM job WHERE job_type = 'TriggererJob' AND state = 'running' ORDER BY id")
    return [row[0] for row in rows]


def triggers_by_triggerer(deployment: AirflowDeployment, run_id: str) -> dict[int | None, int]:
    """How many of the run's deferred waits each triggerer job holds."""
    rows = deployment.query(
        "SELECT t.triggerer_id, COUNT(*) FROM task_instance ti JOIN trigger t ON t.id = ti.trigger_id "
        "WHERE ti.dag_id = ? AND ti.run_id = ? AND ti.state = 'deferred' GROUP BY t.triggerer_id",
        DAG_ID,
        run_id,
    )
    return {triggerer: count for triggerer, count in rows}


def ti_states(deployment: AirflowDeployment, run_id: str) -> dict[tuple[str, int], str | None]:
    rows = deployment.query(
        "SELECT task_id, map_index, state FROM task_instance WHERE dag_id = ? AND run_id = ?", DAG_ID, run_id
    )
    return {(task_id, map_index): state for task_id, map_index, state in rows}


def run_state(deployment: AirflowDeployment, run_id: str) -> str | None:
    rows = deployment.query("SELECT state FROM dag_run WHERE dag_id = ? AND run_id = ?", DAG_ID, run_id)
    return rows[0][0] if rows else None


def videos_of(emu: MidjourneyEmulator, run_id: str) -> list[str]:
    """The emulator's task ids submitted by ``run_id`` (its ``state`` names the DAG run)."""
    return [task_id for task_id, task in emu.tasks.items() if f"/{run_id}/" in str(task["state"])]


def on_kill_calls(deployment: AirflowDeployment) -> int:
    """How many times a triggerer said it invokes on_kill (in its own output or the trigger logs)."""
    files = [*deployment.out_dir.glob("triggerer-*.log"), *(deployment.home / "logs").rglob("*")]
    return sum(path.read_text(errors="replace").count(ON_KILL_LINE) for path in files if path.is_file())


def logged(deployment: AirflowDeployment, text: str) -> bool:
    """Whether any component's output or task/trigger log holds ``text``."""
    files = [*deployment.out_dir.glob("*.log"), *(deployment.home / "logs").rglob("*")]
    return any(text in path.read_text(errors="replace") for path in files if path.is_file())


def start_run(deployment: AirflowDeployment, run_id: str, emu: MidjourneyEmulator, count: int = WAITS) -> list[str]:
    """Trigger a run and wait until each of its waits is deferred on a triggerer (its video still being made)."""
    deployment.cli("dags", "trigger", DAG_ID, "--run-id", run_id)

    def all_held() -> bool:
        held = triggers_by_triggerer(deployment, run_id)
        return (
            sum(held.values()) == count
            and None not in held
            and deferral_exits_seen(deployment, DAG_ID, run_id, "wait") == count
        )

    wait_for(
        f"{count} deferred waits of {run_id}, each held by a triggerer",
        all_held,
        PHASE_TIMEOUT,
        deployment,
    )
    videos = videos_of(emu, run_id)
    assert len(videos) == count
    return videos


def finish_run(deployment: AirflowDeployment, run_id: str, emu: MidjourneyEmulator, videos: list[str]) -> str:
    for video in videos:
        if emu.tasks[video]["status"] not in ("CANCEL", "FAILURE"):
            emu.complete_task(video)
    return wait_for(
        f"{run_id} to finish",
        lambda: run_state(deployment, run_id) if run_state(deployment, run_id) in ("success", "failed") else None,
        PHASE_TIMEOUT,
        deployment,
    )


def test_only_a_person_stopping_a_deferred_wait_cancels_its_video(
    deployment: AirflowDeployment, slow_emulator: MidjourneyEmulator
) -> None:
    emu = slow_emulator
    started = time.monotonic()
    timings: dict[str, float] = {}
    try:
        deployment.cli("db", "migrate", timeout=MIGRATE_TIMEOUT)
        for name in ("api-server", "scheduler", "dag-processor"):
            deployment.start(name)
        deployment.start("triggerer-a", command="triggerer")
        port = int(deployment.env["AIRFLOW__API__PORT"])
        wait_for("the api-server port", lambda: port_open(port), STARTUP_TIMEOUT, deployment)
        wait_for(
            f"{DAG_ID} to be parsed",
            lambda: deployment.query("SELECT 1 FROM serialized_dag WHERE dag_id = ?", DAG_ID),
            STARTUP_TIMEOUT,
            deployment,
        )
        (job_a,) = wait_for(
            "triggerer A's job", lambda: running_triggerer_jobs(deployment), STARTUP_TIMEOUT, deployment
        )

        # ---- 1. A stalls, B adopts its waits, A wakes while the videos are still being made.
        videos = start_run(deployment, "stall", emu)
        assert triggers_by_triggerer(deployment, "stall") == {job_a: WAITS}
        deployment.start("triggerer-b", command="triggerer")
        (job_b,) = wait_for(
            "triggerer B's job",
            lambda: [job for job in running_triggerer_jobs(deployment) if job != job_a],
            STARTUP_TIMEOUT,
            deployment,
        )
        deployment.signal("triggerer-a", signal.SIGSTOP)
        frozen_at = time.monotonic()
        wait_for(
            "B to adopt every wait of the frozen A",
            lambda: triggers_by_triggerer(deployment, "stall") == {job_b: WAITS},
            PHASE_TIMEOUT,
            deployment,
        )
        timings["waits moved to B after the freeze"] = time.monotonic() - frozen_at
        lists_before_wake = emu.count("list") + emu.count("fetch")
        deployment.signal("triggerer-a", signal.SIGCONT)
        wait_for(
            "A to stop its copies of the moved triggers", lambda: on_kill_calls(deployment) >= WAITS, 60, deployment
        )
        wait_for(
            "B to keep polling", lambda: emu.count("list") + emu.count("fetch") > lists_before_wake, 30, deployment
        )
        assert {emu.tasks[video]["status"] for video in videos} <= {"SUBMITTED", "IN_PROGRESS"}
        assert emu.count("cancel") == 0, [r.path for r in emu.requests_to("cancel")]
        assert finish_run(deployment, "stall", emu, videos) == "success"
        assert set(ti_states(deployment, "stall").values()) == {"success"}
        assert emu.count("cancel") == 0

        # ---- 2. A triggerer restart mid-wait.
        videos = start_run(deployment, "restart", emu)
        holder = max(triggers_by_triggerer(deployment, "restart").items(), key=lambda item: item[1])[0]
        name = "triggerer-a" if holder == job_a else "triggerer-b"
        timings[f"{name} stopped by SIGTERM"] = deployment.stop_component(name)
        deployment.start(name, command="triggerer")
        restarted = time.monotonic()
        wait_for(
            "every wait held by a running triggerer again",
            lambda: (
                set(triggers_by_triggerer(deployment, "restart")) <= set(running_triggerer_jobs(deployment))
                and sum(triggers_by_triggerer(deployment, "restart").values()) == WAITS
            ),
            PHASE_TIMEOUT,
            deployment,
        )
        timings["waits held again after the restart"] = time.monotonic() - restarted
        assert emu.count("cancel") == 0
        assert finish_run(deployment, "restart", emu, videos) == "success"
        assert emu.count("cancel") == 0

        # ---- 3. A person marks one deferred wait failed.
        videos = start_run(deployment, "markfail", emu)
        index = 2
        doomed = next(video for video in videos if str(emu.tasks[video]["state"]).endswith(f"/submit[{index}]"))
        response = deployment.api(
            "PATCH",
            f"/dags/{DAG_ID}/dagRuns/markfail/taskInstances/wait/{index}",
            json={"new_state": "failed"},
        )
        assert response.status_code == 200, response.text
        wait_for(
            "the marked wait's on_kill to finish its cancel",
            lambda: logged(deployment, f"Cancel of Midjourney task {doomed} after the deferred task was stopped"),
            60,
            deployment,
        )
        assert [(r.path, r.status) for r in emu.requests_to("cancel")] == [(f"/mj/task/{doomed}/cancel", 200)]
        assert emu.tasks[doomed]["status"] == "CANCEL"
        assert finish_run(deployment, "markfail", emu, videos) == "failed"
        states = ti_states(deployment, "markfail")
        assert states[("wait", index)] == "failed"
        assert {state for key, state in states.items() if key != ("wait", index)} == {"success"}

        # Three runs, 18 paid videos, one cancel (the person's); no secret in any log.
        assert emu.counters["submit_accepted"] == 3 * WAITS
        assert not emu.errors
        logs = [*deployment.out_dir.glob("*.log"), *(deployment.home / "logs").rglob("*")]
        assert not [path for path in logs if path.is_file() and SECRET_KEY in path.read_text(errors="replace")]
        short = [
            path.name
            for path in logs
            if path.is_file() and re.search(r"too short \(<\d+ chars\)", path.read_text(errors="replace"))
        ]
        assert short == [], f"a value too short to be a secret was registered with the masker in {short}"
    except BaseException:
        print(deployment.diagnostics())
        raise
    finally:
        print(
            f"\n{DAG_ID}: {time.monotonic() - started:.1f} s; ", ", ".join(f"{k} {v:.1f} s" for k, v in timings.items())
        )
