"""
The reliability promises on a production-shaped deployment, with real processes killed for real.

One deployment for the module: PostgreSQL (Airflow's metadata database and Celery's result backend), Redis
(Celery's broker), Airflow 3.3's api-server, scheduler (CeleryExecutor), dag-processor, two Celery workers and two
triggerers, each in a session of its own, and the emulator (trueai flavour: it has a cancel route) in a process
of its own. Health thresholds are lowered so that faults resolve in seconds (see ``FAST_FAULTS``).

Each scenario is one DAG run and asserts exact counts from the emulator's log and from Airflow's database:

1. load: 100 mapped videos, deferrable waits, batched polling spread over both triggerers;
2. a triggerer's session is SIGKILLed while 60 waits are deferred;
3. a Celery worker's session is SIGKILLed after the submit was accepted (polling in the worker; and deferrable,
   between the submit and the deferral);
4. the scheduler restarts mid-run;
5. the API goes away for 60 s while waits are deferred and comes back on the same port with its tasks;
6. a person clears one deferred wait (it keeps its video) and marks another failed (its video is cancelled).

Figures (durations, request counts, worker-slot seconds) are printed and written to
``artifacts/production/figures.json``.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import signal
import statistics
import time
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from helpers import SECRET_KEY
from helpers.airflow_processes import base_env, free_port, port_open, wait_for
from helpers.production import (
    STARTUP_TIMEOUT,
    TRIGGERERS,
    WORKERS,
    Production,
    ProductionDeployment,
    percentile,
    slot_seconds_per_video,
    start_worker,
    worker_of,
)
from helpers.servers import REQUIRE_ENV, EmulatorProcess, PostgresCluster, RedisServer, missing_parts

pytestmark = pytest.mark.slow

FIGURES_FILE = Path(__file__).resolve().parent.parent / "artifacts" / "production" / "figures.json"
#: Every scenario's figures, written to ``FIGURES_FILE`` when the deployment stops.
FIGURES: dict[str, Any] = {}
LOAD_VIDEOS = 100
LOAD_VIDEO_SECONDS = 30
FAILOVER_WAITS = 60
SMALL_RUN = 10
POLL_INTERVAL = 5
LIST_CHUNK_SIZE = 20
#: A triggerer holds at most this many triggers: 100 waits must spread over both.
TRIGGERER_CAPACITY = 60
#: Settings lowered so that faults resolve in seconds; the README says what a real deployment sets.
FAST_FAULTS = {
    "AIRFLOW__TRIGGERER__TRIGGERER_HEALTH_CHECK_THRESHOLD": "10",
    "AIRFLOW__TRIGGERER__JOB_HEARTBEAT_SEC": "1",
    "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": "20",
    "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT_DETECTION_INTERVAL": "2",
}
API_AWAY_SECONDS = 60
IMAGE = "https://cdn.example.com/first-frame.png"

_HEAD = """
import time
from datetime import timedelta

import pendulum
from airflow.sdk import DAG

from airflow_provider_mjvideo.operators.video import SubmitVideoOperator

START = pendulum.datetime(2026, 1, 1, tz="UTC")
"""

_VIDEOS_DAG = """
with DAG("{dag_id}", schedule=None, start_date=START, catchup=False, max_active_tasks=128) as dag:
    SubmitVideoOperator.partial(
        task_id="video", image="{image}", motion="low", wait_for_completion=True, deferrable=True,
        poll_interval={poll}, timeout=1800,
    ).expand(prompt=[f"shot {{index}}" for index in range({count})])
"""

_WORKER_DAGS = """
class SubmitThenStall(SubmitVideoOperator):
    # Its first try stalls between the submit (the id already in task_state_store) and the deferral, so that the
    # test can kill its worker exactly there; later tries go on as usual.
    def poll_until_complete(self, external_id, context):
        if context["ti"].try_number == 1:
            while True:
                time.sleep(1)
        return super().poll_until_complete(external_id, context)


with DAG("mjvideo_prod_worker_poll", schedule=None, start_date=START, catchup=False) as poll_dag:
    SubmitVideoOperator(
        task_id="video", prompt="polled in the worker", image="{image}", motion="low", wait_for_completion=True,
        deferrable=False, poll_interval=2, retries=1, retry_delay=timedelta(seconds=1),
    )

with DAG("mjvideo_prod_worker_defer", schedule=None, start_date=START, catchup=False) as defer_dag:
    SubmitThenStall(
        task_id="video", prompt="deferred after the stall", image="{image}", motion="low",
        wait_for_completion=True, deferrable=True, poll_interval=2, retries=1, retry_delay=timedelta(seconds=1),
    )
"""

DAGS = {
    "mjvideo_prod_load": LOAD_VIDEOS,
    "mjvideo_prod_failover": FAILOVER_WAITS,
    "mjvideo_prod_small": SMALL_RUN,
}


@pytest.fixture(scope="module")
def prod(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Production]:
    missing = missing_parts()
    if missing:
        message = f"the production deployment needs {', '.join(missing)}"
        if os.environ.get(REQUIRE_ENV) == "1":
            pytest.fail(f"{message} ({REQUIRE_ENV}=1)")
        pytest.skip(f"{message}; ./dev.sh test installs PostgreSQL and Redis when run as root")
    root = tmp_path_factory.mktemp("production")
    out_dir, home, dags = root / "process-output", root / "airflow-home", root / "dags"
    for folder in (out_dir, home, dags):
        folder.mkdir()
    source = _HEAD + _WORKER_DAGS.format(image=IMAGE)
    for dag_id, count in DAGS.items():
        source += _VIDEOS_DAG.format(dag_id=dag_id, image=IMAGE, poll=POLL_INTERVAL, count=count)
    (dags / "mjvideo_production.py").write_text(source)

    postgres = PostgresCluster(out_dir / "postgres.log")
    redis = RedisServer(out_dir / "redis.log")
    emulator: EmulatorProcess | None = None
    deployment: ProductionDeployment | None = None
    survivors: list[int] = []
    try:
        postgres.start()
        redis.start(root)
        emulator = EmulatorProcess(
            api_key=SECRET_KEY, auth_style="bearer", flavor="trueai", video_duration=LOAD_VIDEO_SECONDS
        )
        env = base_env(home, free_port(), dags)
        env.update(
            {
                "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": postgres.sqlalchemy_url,
                "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
                "AIRFLOW__CELERY__BROKER_URL": redis.url,
                "AIRFLOW__CELERY__RESULT_BACKEND": postgres.celery_result_backend,
                "AIRFLOW__CORE__PARALLELISM": "32",
                "AIRFLOW__CORE__MAX_ACTIVE_TASKS_PER_DAG": "128",
                "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
                "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
                "AIRFLOW__API__WORKERS": "2",
                "AIRFLOW__DAG_PROCESSOR__PARSING_PROCESSES": "1",
                "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
                "AIRFLOW__SCHEDULER__SCHEDULER_IDLE_SLEEP_TIME": "0.5",
                "AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK": "False",
                "AIRFLOW__TRIGGERER__CAPACITY": str(TRIGGERER_CAPACITY),
                # The first task-state look-up of a triggerer waits for its in-process execution API (see test_on_kill).
                "AIRFLOW__TRIGGERER__ON_KILL_TIMEOUT": "60",
                **FAST_FAULTS,
                "AIRFLOW_CONN_MIDJOURNEY_DEFAULT": emulator.connection_json(list_chunk_size=LIST_CHUNK_SIZE),
            }
        )
        deployment = ProductionDeployment(home=home, env=env, out_dir=out_dir, postgres=postgres)
        started = time.monotonic()
        deployment.cli("db", "migrate", timeout=600)
        for name in ("api-server", "scheduler", "dag-processor"):
            deployment.start(name)
        for name in WORKERS:
            start_worker(deployment, name)
        port = int(env["AIRFLOW__API__PORT"])
        wait_for("the api-server port", lambda: port_open(port), STARTUP_TIMEOUT, deployment)
        wait_for(
            "the DAGs to be parsed",
            lambda: len(deployment.query("SELECT dag_id FROM serialized_dag")) == len(DAGS) + 2,
            STARTUP_TIMEOUT,
            deployment,
        )
        prod = Production(deployment, emulator)
        for name in TRIGGERERS:
            prod.start_triggerer(name)
        FIGURES["deployment up (migrate, components, DAGs parsed), s"] = round(time.monotonic() - started, 1)
        yield prod
        assert not emulator.control.errors()
        logs = [*out_dir.glob("*.log"), *(home / "logs").rglob("*")]
        leaked = [path.name for path in logs if path.is_file() and SECRET_KEY in path.read_text(errors="replace")]
        assert leaked == [], f"the API key was written to {leaked}"
    except BaseException:
        if deployment is not None:
            print(deployment.diagnostics())
        raise
    finally:
        if deployment is not None:
            for name in list(deployment.procs):
                with contextlib.suppress(ProcessLookupError):
                    deployment.signal(name, signal.SIGCONT)
            survivors = deployment.stop()
        if emulator is not None:
            emulator.stop()
        redis.stop()
        postgres.stop()
        FIGURES_FILE.parent.mkdir(parents=True, exist_ok=True)
        FIGURES_FILE.write_text(json.dumps(FIGURES, indent=2, ensure_ascii=False) + "\n")
    assert not survivors, f"Airflow processes survived the teardown: {survivors}"


@pytest.fixture
def figures(prod: Production) -> Iterator[dict[str, Any]]:
    """The figures of one scenario (its ``name`` key names it), printed and kept for ``FIGURES_FILE``."""
    mine: dict[str, Any] = {}
    started = time.monotonic()
    yield mine
    mine["scenario duration, s"] = round(time.monotonic() - started, 1)
    FIGURES[mine.pop("name", "unnamed")] = mine
    print(json.dumps(mine, indent=2, ensure_ascii=False))


def test_load_100_videos_spread_over_two_triggerers(prod: Production, figures: dict[str, Any]) -> None:
    dag_id, run_id = "mjvideo_prod_load", "load"
    figures["name"] = "1. load"
    prod.emu.set_duration(LOAD_VIDEO_SECONDS)
    prod.trigger(dag_id, run_id)
    holders: dict[int, set[int]] = defaultdict(set)  # map index → triggerer jobs seen holding it
    peak: dict[int, int] = defaultdict(int)

    def sample() -> str | None:
        for triggerer, indexes in prod.held(dag_id, run_id).items():
            if triggerer is not None:
                peak[triggerer] = max(peak[triggerer], len(indexes))
                for index in indexes:
                    holders[index].add(triggerer)
        state = prod.run_state(dag_id, run_id)
        return state if state in ("success", "failed") else None

    assert prod.wait(f"{dag_id}/{run_id} to finish", sample) == "success"

    states = prod.states(dag_id, run_id)
    assert {state for state, _tries in states.values()} == {"success"}
    assert len(states) == LOAD_VIDEOS
    assert prod.accepted(dag_id, run_id) == LOAD_VIDEOS
    assert prod.failed_tries(dag_id, run_id) == 0
    assert len(peak) == 2, f"the waits were not spread over both triggerers: {dict(peak)}"
    assert all(len(jobs) == 1 for jobs in holders.values()), "a trigger moved without a fault"
    # Poll requests per interval, attributed to a triggerer by the ids they ask for. The bound holds on average
    # over the intervals a triggerer was polling; a single fixed 5 s window may hold two ticks, because a tick
    # that comes late by less than a quarter interval (a busy event loop) keeps the cadence of the next one.
    videos = {task_id: index for index, task_id in prod.videos(dag_id, run_id).items()}
    owner = {index: next(iter(jobs)) for index, jobs in holders.items()}
    times: dict[int, list[float]] = defaultdict(list)
    polls = [r for r in prod.emu.requests() if r[0] in ("list", "fetch")]
    for route, path, _status, at, body in polls:
        ids = body.get("ids", []) if route == "list" and isinstance(body, dict) else [path.split("/")[-2]]
        jobs = {owner[videos[i]] for i in ids if i in videos and videos[i] in owner}
        assert len(jobs) == 1, f"a poll asked for no wait, or for waits held by two triggerers: {ids}"
        times[jobs.pop()].append(at)
    for job, waits in peak.items():
        span = max(times[job]) - min(times[job])
        intervals = math.floor(span / POLL_INTERVAL) + 1
        mean = len(times[job]) / intervals
        buckets = defaultdict(int)
        for at in times[job]:
            buckets[int((at - min(times[job])) // POLL_INTERVAL)] += 1
        bound = math.ceil(waits / LIST_CHUNK_SIZE) + 1
        assert mean <= bound, f"triggerer {job} sent {mean:.2f} polls per {POLL_INTERVAL} s interval (bound {bound})"
        figures[f"triggerer {job}"] = {
            "peak waits": waits,
            "poll requests": len(times[job]),
            "intervals polled": intervals,
            "requests per interval (mean, most in one fixed window)": [round(mean, 2), max(buckets.values())],
            "bound ceil(waits / chunk) + 1": bound,
        }
    slots = slot_seconds_per_video(prod.airflow, dag_id, run_id)
    assert len(slots) == LOAD_VIDEOS
    assert all(seconds > 0 for seconds in slots)
    figures.update(
        {
            "videos": LOAD_VIDEOS,
            "accepted submits": prod.accepted(dag_id, run_id),
            "poll requests (list, fetch)": [
                sum(r[0] == "list" for r in polls),
                sum(r[0] == "fetch" for r in polls),
            ],
            "worker-slot seconds per video p50, p95, max": [
                round(statistics.median(slots), 2),
                round(percentile(slots, 0.95), 2),
                round(max(slots), 2),
            ],
        }
    )


def test_a_killed_triggerer_loses_its_waits_to_the_other_and_nothing_is_paid_twice(
    prod: Production, figures: dict[str, Any]
) -> None:
    dag_id, run_id = "mjvideo_prod_failover", "triggerer-killed"
    figures["name"] = "2. a triggerer dies"
    prod.emu.set_duration(3600)
    prod.trigger(dag_id, run_id)
    held = prod.wait_deferred(dag_id, run_id, FAILOVER_WAITS)
    jobs = prod.triggerer_names()
    victim_job = max((job for job in held if job is not None), key=lambda job: len(held[job]))
    victim, survivor_job = jobs[victim_job], next(job for job in jobs if job != victim_job)
    videos = prod.videos(dag_id, run_id)
    moved = {videos[index] for index in held[victim_job]}
    prod.airflow.kill_session(victim)
    killed_at = time.monotonic()

    def all_moved() -> bool:
        held = prod.held(dag_id, run_id)
        return set(held) == {survivor_job} and len(held[survivor_job]) == FAILOVER_WAITS

    prod.wait(f"triggerer job {survivor_job} to hold every wait of the killed {victim}", all_moved)
    moved_after = time.monotonic() - killed_at

    def moved_wait_polled() -> bool:
        return any(
            at > killed_at and route == "list" and moved & set(body.get("ids", []))
            for route, _path, _status, at, body in prod.emu.requests("list")
        )

    prod.wait("the other triggerer to poll a moved wait", moved_wait_polled)
    polled_after = time.monotonic() - killed_at
    assert prod.states(dag_id, run_id)
    assert {s for s, _t in prod.states(dag_id, run_id).values()} == {"deferred"}
    prod.emu.complete(list(videos.values()))
    completed_at = time.monotonic()
    assert prod.finish(dag_id, run_id) == "success"
    assert {state for state, _tries in prod.states(dag_id, run_id).values()} == {"success"}
    assert prod.accepted(dag_id, run_id) == FAILOVER_WAITS
    assert prod.failed_tries(dag_id, run_id) == 0
    assert prod.cancels() == []
    figures.update(
        {
            "deferred waits": FAILOVER_WAITS,
            "waits on the killed triggerer": len(moved),
            "kill → every wait held by the other triggerer, s": round(moved_after, 1),
            "kill → first poll of a moved wait (the delay the kill added), s": round(polled_after, 1),
            "videos finished → run succeeded, s": round(time.monotonic() - completed_at, 1),
            "accepted submits": prod.accepted(dag_id, run_id),
            "cancel requests": len(prod.cancels()),
        }
    )
    prod.start_triggerer(victim)


@pytest.mark.parametrize(
    ("dag_id", "where"),
    [
        pytest.param("mjvideo_prod_worker_poll", "polling in the worker", id="polling"),
        pytest.param("mjvideo_prod_worker_defer", "between the submit and the deferral", id="before-deferral"),
    ],
)
def test_a_killed_worker_s_retry_reattaches_on_the_other_worker(
    prod: Production, figures: dict[str, Any], dag_id: str, where: str
) -> None:
    run_id = "worker-killed"
    figures["name"] = f"3. a worker dies {where}"
    prod.emu.set_duration(3600)
    prod.trigger(dag_id, run_id)

    def stored_and_running() -> tuple[str, int] | None:
        stored = prod.airflow.query(
            "SELECT value FROM task_state_store WHERE dag_id = %s AND run_id = %s AND key = 'mj_task_id'",
            dag_id,
            run_id,
        )
        running = prod.airflow.query(
            "SELECT pid FROM task_instance WHERE dag_id = %s AND run_id = %s AND state = 'running' AND pid IS NOT NULL",
            dag_id,
            run_id,
        )
        return (json.loads(stored[0][0]), running[0][0]) if stored and running else None

    mj_task_id, pid = prod.wait("the submit's id in task_state_store, the task running", stored_and_running)
    assert prod.accepted(dag_id, run_id) == 1
    worker = worker_of(prod.airflow, pid)
    assert worker is not None, f"task process {pid} is in no worker's session"
    killed = prod.airflow.kill_session(worker)
    killed_at = time.monotonic()
    prod.wait(
        "the retry to run",
        lambda: (
            prod.states(dag_id, run_id).get(-1, (None, 0))[1] == 2
            and prod.states(dag_id, run_id)[-1][0] in ("running", "deferred")
        ),
    )
    retried_after = time.monotonic() - killed_at
    prod.wait(
        "the retry to reattach (a fetch of the stored task after the kill)",
        lambda: any(
            at > killed_at and path.endswith(f"/{mj_task_id}/fetch") for _r, path, _s, at, _b in prod.emu.requests()
        ),
    )
    prod.emu.complete([mj_task_id])
    assert prod.finish(dag_id, run_id) == "success"
    assert prod.accepted(dag_id, run_id) == 1
    assert prod.videos(dag_id, run_id) == {-1: mj_task_id}
    assert prod.cancels() == []
    figures.update(
        {
            "processes killed with the worker": killed,
            "kill → retry running on the other worker, s": round(retried_after, 1),
            "accepted submits": prod.accepted(dag_id, run_id),
            "tries": prod.states(dag_id, run_id)[-1][1],
        }
    )
    start_worker(prod.airflow, worker)


def test_a_scheduler_restart_mid_run_loses_nothing_and_submits_nothing_twice(
    prod: Production, figures: dict[str, Any]
) -> None:
    dag_id, run_id = "mjvideo_prod_small", "scheduler-restart"
    figures["name"] = "4. the scheduler restarts"
    prod.emu.set_duration(20)
    prod.trigger(dag_id, run_id)
    prod.wait("the first submits", lambda: prod.accepted(dag_id, run_id) >= 3)
    accepted_at_stop = prod.accepted(dag_id, run_id)
    stopped_in = prod.airflow.stop_component("scheduler")
    prod.airflow.start("scheduler")
    assert prod.finish(dag_id, run_id) == "success"
    assert prod.accepted(dag_id, run_id) == SMALL_RUN
    assert sorted(prod.videos(dag_id, run_id)) == list(range(SMALL_RUN))
    assert prod.failed_tries(dag_id, run_id) == 0
    figures.update(
        {
            "accepted submits when the scheduler was stopped": accepted_at_stop,
            "scheduler stopped in, s": round(stopped_in, 1),
            "accepted submits": prod.accepted(dag_id, run_id),
        }
    )


def test_waits_survive_the_api_going_away_for_a_minute(prod: Production, figures: dict[str, Any]) -> None:
    dag_id, run_id = "mjvideo_prod_small", "api-away"
    figures["name"] = "5. the API goes away"
    prod.emu.set_duration(3600)
    prod.trigger(dag_id, run_id)
    prod.wait_deferred(dag_id, run_id, SMALL_RUN)
    videos = prod.videos(dag_id, run_id)
    prod.emu.stop_serving()
    away_from = time.monotonic()
    try:
        while time.monotonic() - away_from < API_AWAY_SECONDS:
            prod.airflow.check_alive()
            assert {s for s, _t in prod.states(dag_id, run_id).values()} == {"deferred"}
            time.sleep(2)
    finally:
        prod.emu.start_serving()
    back_at = time.monotonic()
    prod.wait(
        "a poll after the API came back",
        lambda: any(at > back_at for _r, _p, _s, at, _b in prod.emu.requests("list")),
    )
    polled_after = time.monotonic() - back_at
    prod.emu.complete(list(videos.values()))
    assert prod.finish(dag_id, run_id) == "success"
    assert prod.accepted(dag_id, run_id) == SMALL_RUN
    assert prod.failed_tries(dag_id, run_id) == 0
    figures.update(
        {
            "API away, s": API_AWAY_SECONDS,
            "API back → first poll, s": round(polled_after, 1),
            "accepted submits": prod.accepted(dag_id, run_id),
            "failed task instances": prod.failed_tries(dag_id, run_id),
        }
    )


def test_a_cleared_wait_keeps_its_video_and_a_wait_marked_failed_is_cancelled_once(
    prod: Production, figures: dict[str, Any]
) -> None:
    dag_id, run_id = "mjvideo_prod_small", "person"
    cleared, marked = 3, 5
    figures["name"] = "6. a person clears one wait and marks another failed"
    prod.emu.set_duration(3600)
    prod.trigger(dag_id, run_id)
    prod.wait_deferred(dag_id, run_id, SMALL_RUN)
    videos = prod.videos(dag_id, run_id)

    response = prod.airflow.api(
        "POST",
        f"/dags/{dag_id}/clearTaskInstances",
        json={
            "dry_run": False,
            "dag_run_id": run_id,
            "task_ids": [["video", cleared]],
            "only_failed": False,
            "reset_dag_runs": False,
        },
    )
    assert response.status_code == 200, response.text
    response = prod.airflow.api(
        "PATCH", f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/video/{marked}", json={"new_state": "failed"}
    )
    assert response.status_code == 200, response.text
    prod.wait(
        "the cleared wait's trigger to decide (and keep its video)",
        lambda: prod.airflow_logged(f"Trigger of Midjourney task {videos[cleared]} stopped; leaving the task running"),
    )
    prod.wait("the marked wait's cancel", lambda: prod.cancels())
    prod.wait(
        "the cleared wait's new try to defer again",
        lambda: prod.states(dag_id, run_id)[cleared] == ("deferred", 2),
    )
    assert prod.airflow_logged(f"An earlier try submitted Midjourney task {videos[cleared]}")
    prod.emu.complete([task_id for index, task_id in videos.items() if index != marked])
    assert prod.finish(dag_id, run_id) == "failed"
    states = prod.states(dag_id, run_id)
    assert states.pop(marked)[0] == "failed"
    assert {state for state, _tries in states.values()} == {"success"}
    assert states[cleared] == ("success", 2)
    assert prod.cancels() == [f"/mj/task/{videos[marked]}/cancel"]
    assert prod.accepted(dag_id, run_id) == SMALL_RUN
    statuses = {task_id: status for task_id, (status, _state) in prod.emu.tasks().items()}
    assert statuses[videos[marked]] == "CANCEL"
    assert statuses[videos[cleared]] == "SUCCESS"
    figures.update(
        {
            "accepted submits": prod.accepted(dag_id, run_id),
            "cancel requests": len(prod.cancels()),
            "tries of the cleared task instance": states[cleared][1],
        }
    )
