"""MidjourneyTaskSensor: poke mode through ``dag.test()`` against the emulator, and the deferrable entry point."""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import pendulum
import pytest
from airflow.providers.common.compat.sdk import TaskDeferred
from airflow.providers.common.compat.version_compat import AIRFLOW_V_3_1_PLUS
from airflow.sdk import DAG
from helpers.dag_runs import task_states, xcom_value

from airflow_provider_mjvideo.operators.video import SubmitVideoOperator
from airflow_provider_mjvideo.sensors.video import MidjourneyTaskSensor
from airflow_provider_mjvideo.testing import MidjourneyEmulator
from airflow_provider_mjvideo.triggers.video import MidjourneyTaskTrigger

IMAGE = "https://cdn.example.com/first-frames/boat.png"
START = pendulum.datetime(2026, 1, 1, tz="UTC")
UNKNOWN_ID = "10000000000000001"
SUMMARY_KEYS = {
    "id",
    "status",
    "progress",
    "video_urls",
    "image_url",
    "fail_reason",
    "prompt",
    "submit_time",
    "start_time",
    "finish_time",
}


# ------------------------------------------------------------------------------------------ helpers


def dag_id_for(request: pytest.FixtureRequest) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", f"sensor_{request.node.name}")[:200]


def sensor_messages(output: str, mj_task_id: str) -> list[str]:
    """The sensor's "Midjourney task <id>: ..." log lines, message text only, in order."""
    if AIRFLOW_V_3_1_PLUS:
        pattern = re.compile(
            rf"\] (Midjourney task {mj_task_id}: .*?)\s+\[airflow\.task\.operators\.airflow_provider_mjvideo\.sensors"
        )
    else:
        # Airflow 3.0 prints the task's stdlib log records twice in dag.test(): through the handler dag.test() adds
        # to the "airflow.task" logger ("[2026-01-01 12:00:00,000] {video.py:150} INFO - ...", bound to the
        # sys.stdout of the first dag.test() of the process) and, propagated, through Airflow's root console
        # handler ("[2026-01-01T12:00:00.000+0000] {video.py:150} INFO - ...", the current sys.stdout). Neither
        # shows the logger's name. Read the root handler's lines only: one per log call.
        pattern = re.compile(
            r"^\[\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}[+-]\d{4}\] \{waiting\.py:\d+\} INFO - "
            rf"(Midjourney task {mj_task_id}: .*)$",
            re.MULTILINE,
        )
    return [match.group(1) for match in pattern.finditer(output)]


def submit_and_wait_dag(dag_id: str, prompt: str = "a paper boat", **sensor_kwargs: Any) -> DAG:
    with DAG(dag_id, schedule=None, start_date=START) as dag:
        submit = SubmitVideoOperator(task_id="submit", prompt=prompt, image=IMAGE)
        MidjourneyTaskSensor(
            task_id="wait",
            mj_task_id=submit.output,
            **{"poke_interval": 0.2, "timeout": 60, "mode": "poke", **sensor_kwargs},
        )
    return dag


class When:
    """Run ``action`` once, from a background thread, as soon as ``condition`` holds (polled every 10 ms)."""

    def __init__(self, condition: Callable[[], bool], action: Callable[[], None], limit: float = 60.0) -> None:
        self.before = self.after = 0.0
        self.fired = False
        self._condition, self._action, self._limit = condition, action, limit
        threading.Thread(target=self._run, name="sensor-test-when", daemon=True).start()

    def _run(self) -> None:
        deadline = time.monotonic() + self._limit
        while time.monotonic() < deadline:
            if self._condition():
                self.before = time.monotonic()
                self._action()
                self.after = time.monotonic()
                self.fired = True
                return
            time.sleep(0.01)


def only_task(emu: MidjourneyEmulator) -> str:
    (task_id,) = emu.tasks
    return task_id


class StubTI:
    dag_id = "unit_dag"
    task_id = "wait"
    map_index = -1
    stats_tags: dict[str, str] = {}


def clip_urls(emu: MidjourneyEmulator, task_id: str) -> list[str]:
    return [f"{emu.root_url}/media/{task_id}/{i}.mp4" for i in range(4)]


# ------------------------------------------------------------------------------------------ poke mode


def test_poke_mode_returns_a_json_summary_with_the_video_urls(run_dag, emulator, request):
    emulator.config.video_duration = 60
    finisher = When(lambda: emulator.count("fetch") >= 3, lambda: emulator.complete_task(only_task(emulator)))

    dag_run = run_dag(submit_and_wait_dag(dag_id_for(request), prompt="a paper boat at dusk"))

    assert finisher.fired
    assert task_states(dag_run) == {("submit", -1): ("success", 1), ("wait", -1): ("success", 1)}
    task_id = xcom_value(dag_run, "submit")
    summary = xcom_value(dag_run, "wait")
    assert json.loads(json.dumps(summary)) == summary
    assert set(summary) >= SUMMARY_KEYS
    assert summary["id"] == task_id
    assert summary["status"] == "SUCCESS"
    assert summary["progress"] == 100
    assert summary["video_urls"] == clip_urls(emulator, task_id)
    assert all(isinstance(url, str) for url in summary["video_urls"])
    assert summary["image_url"] == IMAGE
    assert summary["fail_reason"] is None
    assert summary["prompt"] == "a paper boat at dusk"
    submitted = datetime.fromisoformat(summary["submit_time"])
    finished = datetime.fromisoformat(summary["finish_time"])
    assert timedelta(seconds=0.3) < finished - submitted < timedelta(seconds=30)  # two polls 0.2 s apart at least
    assert emulator.count("fetch") in (3, 4)  # it poked while the video was running, then saw it done


@pytest.mark.parametrize(
    ("marker", "deferrable", "reason"),
    [
        ("[fail]", False, "ended FAILURE: Emulated failure"),
        ("[cancel]", False, "ended CANCEL"),
        ("[modal]", False, "ended MODAL: the task waits for a manual confirmation"),
        ("[fail]", True, "ended FAILURE: Emulated failure"),
    ],
)
def test_terminal_failures_fail_the_sensor_at_once_without_retries(
    run_dag, emulator, request, capfd, marker, deferrable, reason
):
    emulator.config.video_duration = 0.6
    dag = submit_and_wait_dag(
        dag_id_for(request),
        prompt=f"a paper boat {marker}",
        deferrable=deferrable,
        retries=2,
        retry_delay=timedelta(seconds=0),
    )

    dag_run = run_dag(dag)
    output = capfd.readouterr().out

    assert str(dag_run.state) == "failed"
    assert task_states(dag_run) == {("submit", -1): ("success", 1), ("wait", -1): ("failed", 1)}
    (task_id,) = emulator.tasks
    assert f"Midjourney task {task_id} {reason}" in output
    fetches = emulator.requests_to("fetch")
    assert fetches[-1].time - fetches[0].time < 2.0  # no waiting for the 60 s timeout
    assert len(fetches) <= 8


def test_progress_is_logged_on_change_and_success_without_urls_is_tolerated(run_dag, emulator, request, capfd):
    # "[stuck]" stays IN_PROGRESS at 99% after 0.3 s; once completed, the URLs follow 0.6 s after SUCCESS.
    emulator.config.video_duration = 0.3
    emulator.config.urls_after_success = 0.6
    finisher = When(lambda: emulator.count("fetch") >= 8, lambda: emulator.complete_task(only_task(emulator)))
    dag = submit_and_wait_dag(dag_id_for(request), prompt="a paper boat [stuck]", poke_interval=0.1)

    dag_run = run_dag(dag)
    output = capfd.readouterr().out

    assert finisher.fired
    assert task_states(dag_run) == {("submit", -1): ("success", 1), ("wait", -1): ("success", 1)}
    task_id = xcom_value(dag_run, "submit")
    assert xcom_value(dag_run, "wait")["video_urls"] == clip_urls(emulator, task_id)
    stuck_from = emulator.tasks[task_id]["submit_mono"] + 0.3
    fetches = emulator.requests_to("fetch")
    polls_at_99 = [r for r in fetches if stuck_from < r.time < finisher.before]
    polls_without_urls = [r for r in fetches if finisher.after < r.time < finisher.after + 0.55]
    assert len(polls_at_99) >= 3
    assert len(polls_without_urls) >= 3
    messages = sensor_messages(output, task_id)
    assert len(messages) == len(set(messages))  # a line only when the status or progress changed
    assert len(messages) < len(fetches)
    assert messages.count(f"Midjourney task {task_id}: task {task_id} is IN_PROGRESS at 99%") == 1
    assert messages.count(f"Midjourney task {task_id}: task {task_id} is SUCCESS but has no video URL yet") == 1


def test_blank_status_of_new_api_is_pending(run_dag, emulator, request, capfd):
    emulator.config.flavor = "newapi"
    emulator.config.newapi_blank_status_seconds = 60
    emulator.config.video_duration = 0.2

    def end_blank_phase() -> None:
        emulator.config.newapi_blank_status_seconds = 0

    finisher = When(lambda: emulator.count("fetch") >= 4, end_blank_phase)
    dag = submit_and_wait_dag(dag_id_for(request), poke_interval=0.1)

    dag_run = run_dag(dag)
    output = capfd.readouterr().out

    assert finisher.fired
    assert task_states(dag_run) == {("submit", -1): ("success", 1), ("wait", -1): ("success", 1)}
    task_id = xcom_value(dag_run, "submit")
    assert xcom_value(dag_run, "wait")["video_urls"] == clip_urls(emulator, task_id)
    blank_polls = [r for r in emulator.requests_to("fetch") if r.time < finisher.before]
    assert len(blank_polls) >= 3
    messages = sensor_messages(output, task_id)
    assert messages.count(f"Midjourney task {task_id}: task {task_id} is status not reported yet at 0%") == 1


def test_unknown_id_beyond_the_grace_fails_with_a_clear_message(run_dag, emulator, request, capfd):
    with DAG(dag_id_for(request), schedule=None, start_date=START) as dag:
        MidjourneyTaskSensor(
            task_id="wait",
            mj_task_id=UNKNOWN_ID,
            poke_interval=0.1,
            timeout=60,
            not_found_grace=0.5,
            retries=2,
            retry_delay=timedelta(seconds=0),
        )

    dag_run = run_dag(dag)
    output = capfd.readouterr().out

    assert task_states(dag_run) == {("wait", -1): ("failed", 1)}
    assert f"Midjourney task {UNKNOWN_ID} not found on the server" in output
    assert f"the server does not know task {UNKNOWN_ID} yet" in output
    assert 4 <= emulator.count("fetch") <= 12


# ------------------------------------------------------------------------------------------ deferrable entry point


def test_deferrable_sensor_on_a_finished_task_returns_without_deferring(hook, emulator):
    emulator.config.video_duration = 0.2
    task_id = hook.submit_video("a paper boat", IMAGE, "low")
    hook.wait_for_task(task_id, poll_interval=0.1, timeout=10)
    fetches_before = emulator.count("fetch")
    sensor = MidjourneyTaskSensor(task_id="wait", mj_task_id=task_id, deferrable=True, poke_interval=5)

    summary = sensor.execute({"ti": StubTI(), "run_id": "manual__unit"})

    assert summary["id"] == task_id
    assert summary["status"] == "SUCCESS"
    assert summary["video_urls"] == clip_urls(emulator, task_id)
    assert emulator.count("fetch") == fetches_before + 1


def test_deferrable_sensor_on_a_running_task_defers_to_the_trigger(hook, emulator, mj_conn):
    task_id = hook.submit_video("a paper boat [stuck]", IMAGE, "low")
    sensor = MidjourneyTaskSensor(
        task_id="wait",
        mj_task_id=task_id,
        deferrable=True,
        poke_interval=3,
        timeout=600,
        not_found_grace=45,
        missing_urls_grace=15,
    )

    with pytest.raises(TaskDeferred) as info:
        sensor.execute({"ti": StubTI(), "run_id": "manual__unit"})

    trigger = info.value.trigger
    assert isinstance(trigger, MidjourneyTaskTrigger)
    assert trigger.mj_task_id == task_id
    assert trigger.midjourney_conn_id == mj_conn
    assert trigger.poll_interval == 3
    assert trigger.not_found_grace == 45
    assert trigger.missing_urls_grace == 15
    assert trigger.end_time is not None
    assert 590 < trigger.end_time - pendulum.now("UTC").timestamp() <= 600
    assert info.value.method_name == "execute_complete"
    assert info.value.timeout.total_seconds() > 600
    assert emulator.count("fetch") == 1  # one look before deferring


def test_deferrable_sensor_with_a_templated_id_is_accepted_at_parse_time():
    sensor = MidjourneyTaskSensor(task_id="wait", mj_task_id="{{ ti.xcom_pull('submit') }}", deferrable=True)
    assert sensor.mj_task_id == "{{ ti.xcom_pull('submit') }}"
    with pytest.raises(ValueError, match="mj_task_id"):
        MidjourneyTaskSensor(task_id="wait", mj_task_id="a/b")
