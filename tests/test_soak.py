"""Soak: 50 videos through the real operator and sensor with ``dag.test()``, under ~20 % injected faults.

One DAG maps ``SubmitVideoOperator`` over 50 shots and ``MidjourneyTaskSensor`` (poke mode) over the submissions;
a second DAG does 10 more with deferrable sensors (their waits run in the trigger, inline in ``dag.test()``).
The emulator injects faults at random (seeded, plus one of each kind up front so that every kind occurs) on reads
(500/503/429, slow answers, dropped connections, truncated JSON) and on submissions before they are accepted: 429
and 503, which the hook resends itself, and 500 and dropped connections, which are ambiguous ("was it accepted?")
and by design never resent by the hook. For those the submit task has ``retries=2, retry_delay=0``: Airflow's
retry submits again, and because an injected submit fault happens before the emulator creates a task, every
video must still be paid for exactly once.

Pass criteria: every task instance succeeds, every sensor on its first try; each sensor's XCom carries its own
video's four clip URLs; the emulator accepted exactly one submission per video and its task ids are exactly the
submit XComs; every submit retry is explained by an ambiguous submit fault; the usage records (XCom ``mj_usage``)
count exactly the emulator's accepted submissions. The figures are printed (``pytest
-s``) and written to ``artifacts/soak.json``.

The hook's backoff starts at 1 s (``RetryPolicy``); operators and sensors build their hook with the defaults
and no connection extra changes them, so the soak runs with the production policy (it stays well under 3 min).
"""

from __future__ import annotations

import json
import time
from collections import Counter
from typing import Any

import pytest
from helpers import REPO, SECRET_KEY, connection_json
from helpers.dag_runs import task_instances, write_dag, xcoms

from airflow_provider_mjvideo.testing import EmulatorConfig, FaultConfig, MidjourneyEmulator
from airflow_provider_mjvideo.testing.emulator import FAULT_KINDS
from airflow_provider_mjvideo.triggers.video import MidjourneyTaskTrigger
from airflow_provider_mjvideo.usage import MidjourneyUsage

pytestmark = pytest.mark.slow

VIDEOS = 50
DEFERRED_VIDEOS = 10
CLIPS = 4
#: Read faults, ~20 % in all.
FETCH_FAULTS = {"500": 0.04, "429": 0.04, "503": 0.04, "slow": 0.03, "drop": 0.03, "malformed": 0.02}
#: Submit faults, all before acceptance: 429/503 are resent by the hook; 500/drop are ambiguous (Airflow retries).
SUBMIT_FAULTS = {"429": 0.08, "503": 0.08, "500": 0.03, "drop": 0.02}
AMBIGUOUS_SUBMIT_FAULTS = {"500", "502", "504", "drop", "malformed"}

SOAK_DAGS = '''
    """The soak DAGs: {videos} videos with poke-mode sensors, {deferred} with deferrable sensors."""

    from __future__ import annotations

    from datetime import timedelta

    import pendulum
    from airflow.sdk import DAG

    from airflow_provider_mjvideo.operators.video import SubmitVideoOperator
    from airflow_provider_mjvideo.sensors.video import MidjourneyTaskSensor


    def shots(count, tag):
        return [
            {{"prompt": f"{{tag}} shot {{n}}: {{PROMPT}}", "image": f"{{IMAGES}}/{{tag}}/{{n}}.png"}}
            for n in range(count)
        ]


    IMAGES = "https://cdn.example.com"
    PROMPT = "a paper boat on a rainy street"
    SUBMIT = {{"retries": 2, "retry_delay": timedelta(0)}}
    START = pendulum.datetime(2026, 1, 1, tz="UTC")

    with DAG(dag_id="mjvideo_soak", schedule=None, start_date=START) as dag:
        submit = SubmitVideoOperator.partial(task_id="submit", **SUBMIT).expand_kwargs(shots({videos}, "soak"))
        MidjourneyTaskSensor.partial(task_id="wait", poke_interval=0.2, timeout=300).expand(mj_task_id=submit.output)

    with DAG(dag_id="mjvideo_soak_deferred", schedule=None, start_date=START) as deferred_dag:
        submit = SubmitVideoOperator.partial(task_id="submit", **SUBMIT).expand_kwargs(shots({deferred}, "deferred"))
        MidjourneyTaskSensor.partial(task_id="wait", poke_interval=0.2, timeout=300, deferrable=True).expand(
            mj_task_id=submit.output
        )
'''


def _shot_prompt(tag: str, n: int) -> str:
    return f"{tag} shot {n}: a paper boat on a rainy street"


def _check_run(dag_run: Any, videos: int, tag: str, emu: MidjourneyEmulator, requests_before: int) -> dict[str, Any]:
    """Assert one soak run's outcome; return its figures."""
    dag_id = dag_run.dag_id
    tis = task_instances(dag_id, dag_run.run_id)
    values = xcoms(dag_id, dag_run.run_id, raw=True)
    states = Counter(str(ti.state) for ti in tis.values())
    assert str(dag_run.state) == "success", states
    assert len(tis) == 2 * videos
    assert states == {"success": 2 * videos}, states
    sensor_tries = {index: tis[("wait", index)].try_number for index in range(videos)}
    assert set(sensor_tries.values()) == {1}, f"sensors retried: {sensor_tries}"

    ids = {}
    for index in range(videos):
        mj_task_id = values[("submit", index, "return_value")]
        summary = values[("wait", index, "return_value")]
        assert isinstance(mj_task_id, str), repr(mj_task_id)  # ids exceed 2**53: never a number
        ids[index] = mj_task_id
        assert summary["id"] == mj_task_id
        assert summary["status"] == "SUCCESS"
        assert len(summary["video_urls"]) == CLIPS, summary
        assert all(f"/media/{mj_task_id}/" in url for url in summary["video_urls"]), summary["video_urls"]
        task = emu.tasks[mj_task_id]
        assert task["prompt"] == _shot_prompt(tag, index)  # the XCom of map index n is shot n's video
        assert task["state"] == f"airflow:{dag_id}/{dag_run.run_id}/submit[{index}]"
    assert len(set(ids.values())) == videos

    run_requests = emu.requests[requests_before:]
    submit_faults = Counter(r.fault for r in run_requests if r.route == "submit" and r.fault)
    ambiguous = sum(count for kind, count in submit_faults.items() if kind in AMBIGUOUS_SUBMIT_FAULTS)
    submit_tries = {index: tis[("submit", index)].try_number for index in range(videos)}
    submit_retries = sum(tries - 1 for tries in submit_tries.values())
    assert submit_retries == ambiguous, (submit_tries, submit_faults)
    # Usage accounting: one paid record per video, on the task instance that got it (retried tries paid nothing).
    usage = MidjourneyUsage.from_db(dag_id=dag_id, run_id=dag_run.run_id)
    assert usage.total == videos
    assert sorted((e.map_index, e.record.mj_task_id, e.record.count) for e in usage.entries) == [
        (index, ids[index], 1) for index in range(videos)
    ]
    return {
        "videos": videos,
        "task_instances": dict(states),
        "submit_retries": submit_retries,
        "submit_tasks_retried": sorted(index for index, tries in submit_tries.items() if tries > 1),
        "sensor_retries": sum(tries - 1 for tries in sensor_tries.values()),
        "ids": ids,
    }


def _fault_counts(requests: list[Any]) -> dict[str, dict[str, int]]:
    counts: dict[str, Counter[str]] = {}
    for request in requests:
        if request.fault:
            counts.setdefault(request.route, Counter())[request.fault] += 1
    return {route: dict(sorted(kinds.items())) for route, kinds in sorted(counts.items())}


def test_soak_fifty_videos_under_faults(airflow_db, tmp_path, monkeypatch):
    assert set(FETCH_FAULTS) | set(SUBMIT_FAULTS) <= set(FAULT_KINDS)
    faults = FaultConfig(seed=20261125, fetch=dict(FETCH_FAULTS), submit=dict(SUBMIT_FAULTS))
    faults.retry_after = 0.2
    faults.slow_seconds = 0.3
    # Besides the random draws, the first requests of each route get one fault of every configured kind, so
    # that every kind is exercised whatever the draws (they are consumed before the rates are consulted).
    faults.fail_next = [("submit", kind) for kind in SUBMIT_FAULTS] + [("fetch", kind) for kind in FETCH_FAULTS]
    config = EmulatorConfig(api_key=SECRET_KEY, video_duration=1.0, auth_style="bearer", faults=faults)
    deferrals: list[str] = []
    original_serialize = MidjourneyTaskTrigger.serialize

    def counting_serialize(self: MidjourneyTaskTrigger) -> tuple[str, dict[str, Any]]:
        deferrals.append(self.mj_task_id)
        return original_serialize(self)

    monkeypatch.setattr(MidjourneyTaskTrigger, "serialize", counting_serialize)

    with MidjourneyEmulator(config) as emu:
        monkeypatch.setenv("AIRFLOW_CONN_MIDJOURNEY_DEFAULT", connection_json(emu))
        source = SOAK_DAGS.format(videos=VIDEOS, deferred=DEFERRED_VIDEOS)
        module = write_dag(tmp_path / "dags", monkeypatch, "mjvideo_soak.py", source)

        started = time.monotonic()
        poke_run = module.dag.test()
        poke_seconds = time.monotonic() - started
        poke = _check_run(poke_run, VIDEOS, "soak", emu, 0)
        assert emu.counters["submit_accepted"] == VIDEOS
        assert set(emu.tasks) == set(poke["ids"].values())

        # Longer videos for the deferrable run, so that its sensors find them unfinished and defer.
        emu.config.video_duration = 3.0
        requests_before = len(emu.requests)
        started = time.monotonic()
        deferred_run = module.deferred_dag.test()
        deferred_seconds = time.monotonic() - started
        deferred = _check_run(deferred_run, DEFERRED_VIDEOS, "deferred", emu, requests_before)
        assert emu.counters["submit_accepted"] == VIDEOS + DEFERRED_VIDEOS
        assert set(emu.tasks) == set(poke["ids"].values()) | set(deferred["ids"].values())
        usage_total = sum(
            MidjourneyUsage.from_db(dag_id=run.dag_id, run_id=run.run_id).total for run in (poke_run, deferred_run)
        )
        assert usage_total == emu.counters["submit_accepted"]
        assert deferrals, "no deferrable sensor deferred"
        assert set(deferrals) <= set(deferred["ids"].values())

        requests = emu.requests
        counters = emu.counters
        videos_failed = sum(1 for task in emu.tasks.values() if task["status"] != "SUCCESS")
        assert emu.errors == []
        assert emu.count("cancel") == 0  # nothing timed out or was killed
        assert videos_failed == 0

    faults_by_route = _fault_counts(requests)
    faults_by_kind = dict(sorted(Counter(r.fault for r in requests if r.fault).items()))
    assert faults_by_kind == dict(sorted(counters["faults"].items()))
    api_requests = [r for r in requests if r.route in ("submit", "fetch", "list", "cancel")]
    injected = sum(faults_by_kind.values())
    assert injected >= 0.1 * len(api_requests), (injected, len(api_requests))
    assert set(faults_by_route.get("fetch", {})) == set(FETCH_FAULTS), faults_by_route
    assert set(faults_by_route.get("submit", {})) == set(SUBMIT_FAULTS), faults_by_route

    figures = {
        "videos": VIDEOS + DEFERRED_VIDEOS,
        "videos_poke_mode": VIDEOS,
        "videos_deferrable": DEFERRED_VIDEOS,
        "submissions_accepted": counters["submit_accepted"],
        "usage_submits_recorded": usage_total,
        "submit_requests": counters["submit"],
        "failures": {
            "task_instances_failed": poke["task_instances"].get("failed", 0)
            + deferred["task_instances"].get("failed", 0),
            "videos_failed": videos_failed,
        },
        "submit_task_retries": poke["submit_retries"] + deferred["submit_retries"],
        "submit_tasks_retried": {"poke": poke["submit_tasks_retried"], "deferred": deferred["submit_tasks_retried"]},
        "sensor_retries": poke["sensor_retries"] + deferred["sensor_retries"],
        "deferrals": len(deferrals),
        "faults_injected_by_kind": faults_by_kind,
        "faults_forced_up_front": len(SUBMIT_FAULTS) + len(FETCH_FAULTS),
        "faults_injected_by_route": faults_by_route,
        "fault_rates": {"fetch": FETCH_FAULTS, "submit": SUBMIT_FAULTS},
        "requests_by_route": dict(sorted(Counter(r.route for r in requests).items())),
        "api_requests": len(api_requests),
        "duration_seconds": {
            "poke_run": round(poke_seconds, 1),
            "deferred_run": round(deferred_seconds, 1),
            "total": round(poke_seconds + deferred_seconds, 1),
        },
    }
    artifacts = REPO / "artifacts"
    artifacts.mkdir(exist_ok=True)
    (artifacts / "soak.json").write_text(json.dumps(figures, indent=2) + "\n")
    print("\nSoak figures:")
    for key, value in figures.items():
        print(f"  {key}: {value}")
