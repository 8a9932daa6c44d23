"""SubmitVideoOperator: end to end with ``dag.test()`` against the emulator; unit-level deferral and resumption."""

from __future__ import annotations

import asyncio
import json
import re
from datetime import timedelta
from types import SimpleNamespace
from typing import Any

import pendulum
import pytest
from airflow.providers.common.compat.sdk import AirflowFailException, TaskDeferred
from airflow.providers.common.compat.version_compat import AIRFLOW_V_3_1_PLUS
from airflow.sdk import DAG
from helpers import SECRET_KEY
from helpers.dag_runs import task_states, xcoms

from airflow_provider_mjvideo.exceptions import (
    MidjourneyError,
    MidjourneyNotFoundError,
    MidjourneyTaskFailedError,
    MidjourneyValidationError,
    MidjourneyWaitTimeoutError,
)
from airflow_provider_mjvideo.links import MidjourneyVideoLink
from airflow_provider_mjvideo.models import MidjourneyTask
from airflow_provider_mjvideo.operators.video import TASK_SUMMARY_XCOM_KEY, SubmitVideoOperator, default_state
from airflow_provider_mjvideo.triggers.video import MidjourneyTaskTrigger
from airflow_provider_mjvideo.usage import USAGE_XCOM_KEY
from airflow_provider_mjvideo.waiting import WaitDecision, WaitOutcome, WaitTracker

IMAGE = "https://cdn.example.com/first-frames/boat.png"
START = pendulum.datetime(2026, 1, 1, tz="UTC")
LINK_KEY = MidjourneyVideoLink().xcom_key
LINK_NAME = "Midjourney video"


# ------------------------------------------------------------------------------------------ helpers


def dag_id_for(request: pytest.FixtureRequest) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", f"op_{request.node.name}")[:200]


def extra_link(dag_run: Any, task_id: str) -> str | None:
    """Resolve the task's extra link the way the API server does: serialized operator + finished TI."""
    from airflow.models.serialized_dag import SerializedDagModel

    task = SerializedDagModel.get_dag(dag_run.dag_id).get_task(task_id)
    ti = dag_run.get_task_instance(task_id)
    assert LINK_NAME in task.extra_links
    return task.get_extra_links(ti, LINK_NAME)


class StubTI:
    """The parts of a task instance the operator touches; records XCom pushes (which must be JSON)."""

    def __init__(self, dag_id: str = "unit_dag", task_id: str = "submit", map_index: int = -1) -> None:
        self.dag_id = dag_id
        self.task_id = task_id
        self.map_index = map_index
        self.stats_tags: dict[str, str] = {}
        self.pushed: dict[str, Any] = {}

    def xcom_push(self, key: str, value: Any) -> None:
        json.dumps(value)
        self.pushed[key] = value


def stub_context(ti: StubTI | None = None, run_id: str = "manual__unit") -> dict[str, Any]:
    return {"ti": ti or StubTI(), "run_id": run_id}


def decided_event(raw: dict[str, Any]) -> dict[str, Any]:
    """The trigger event the wait tracker produces for a task the server reports as ``raw``."""
    task = MidjourneyTask.from_api(raw)
    tracker = WaitTracker(task.id, started_at=0, missing_urls_grace=1)
    decision = tracker.observe(task, now=100)
    if not decision.done:  # SUCCESS without URLs: seen again after the grace
        decision = tracker.observe(task, now=200)
    return decision.to_event(task.id)


# ------------------------------------------------------------------------------------------ dag.test


def test_xcom_is_the_task_id_and_the_default_state_names_the_task_instance(run_dag, emulator, request):
    dag_id = dag_id_for(request)
    with DAG(dag_id, schedule=None, start_date=START) as dag:
        SubmitVideoOperator(task_id="submit", prompt="a paper boat in the rain", image=IMAGE)

    dag_run = run_dag(dag)

    assert task_states(dag_run) == {("submit", -1): ("success", 1)}
    values = xcoms(dag_run.dag_id, dag_run.run_id, raw=True)
    task_id = values[("submit", -1, "return_value")]
    assert isinstance(task_id, str)
    assert list(emulator.tasks) == [task_id]
    body = emulator.requests_to("submit")[0].json
    assert body["state"] == f"airflow:{dag_id}/{dag_run.run_id}/submit"
    assert body["prompt"] == "a paper boat in the rain"
    assert body["image"] == IMAGE
    assert emulator.tasks[task_id]["state"] == body["state"]
    # Not waiting: no summary, and the link points at the task's fetch URL (no key in it).
    assert ("submit", -1, TASK_SUMMARY_XCOM_KEY) not in values
    assert values[("submit", -1, LINK_KEY)] == f"{emulator.url}/mj/task/{task_id}/fetch"
    assert SECRET_KEY not in json.dumps(list(values.values()))
    assert extra_link(dag_run, "submit") == f"{emulator.url}/mj/task/{task_id}/fetch"
    assert emulator.count("submit") == 1
    assert emulator.count("fetch") == 0


def test_mapped_tasks_send_their_map_index_in_the_default_state(run_dag, emulator, request):
    dag_id = dag_id_for(request)
    with DAG(dag_id, schedule=None, start_date=START) as dag:
        SubmitVideoOperator.partial(task_id="submit", image=IMAGE).expand(prompt=["shot zero", "shot one"])

    dag_run = run_dag(dag)

    assert task_states(dag_run) == {("submit", 0): ("success", 1), ("submit", 1): ("success", 1)}
    states = {r.json["prompt"]: r.json["state"] for r in emulator.requests_to("submit")}
    prefix = f"airflow:{dag_id}/{dag_run.run_id}/submit"
    assert states == {"shot zero": f"{prefix}[0]", "shot one": f"{prefix}[1]"}
    values = xcoms(dag_run.dag_id, dag_run.run_id, raw=True)
    assert {values[("submit", 0, "return_value")], values[("submit", 1, "return_value")]} == set(emulator.tasks)


def test_extend_sends_the_parent_as_task_id_and_an_integer_index(run_dag, emulator, request):
    emulator.config.video_duration = 0.4
    with DAG(dag_id_for(request), schedule=None, start_date=START, params={"motion": "high"}) as dag:
        parent = SubmitVideoOperator(
            task_id="parent",
            prompt="a paper boat",
            image=IMAGE,
            wait_for_completion=True,
            deferrable=True,
            poll_interval=0.1,
            timeout=60,
        )
        SubmitVideoOperator(
            task_id="extend",
            action="extend",
            mj_task_id=parent.output,
            index="2",
            prompt="the boat reaches the harbour",
            motion="{{ params.motion }}",
        )

    dag_run = run_dag(dag)

    assert task_states(dag_run) == {("parent", -1): ("success", 1), ("extend", -1): ("success", 1)}
    values = xcoms(dag_run.dag_id, dag_run.run_id, raw=True)
    parent_id = values[("parent", -1, "return_value")]
    extend_id = values[("extend", -1, "return_value")]
    first, second = (r.json for r in emulator.requests_to("submit"))
    assert "action" not in first
    assert second["action"] == "extend"
    assert second["taskId"] == parent_id
    assert second["task_id"] == parent_id
    assert second["index"] == 2
    assert type(second["index"]) is int
    assert second["motion"] == "high"  # rendered from params
    assert "image" not in second
    assert emulator.tasks[extend_id]["parent_id"] == parent_id
    assert emulator.tasks[extend_id]["index"] == 2
    # The parent waited (in the triggerer, run inline by dag.test): summary and link to the first clip.
    summary = values[("parent", -1, TASK_SUMMARY_XCOM_KEY)]
    clips = [f"{emulator.root_url}/media/{parent_id}/{i}.mp4" for i in range(4)]
    assert summary["id"] == parent_id
    assert summary["status"] == "SUCCESS"
    assert summary["video_urls"] == clips
    assert values[("parent", -1, LINK_KEY)] == clips[0]
    assert extra_link(dag_run, "parent") == clips[0]
    assert emulator.counters["submit_accepted"] == 2


def test_templated_motion_is_accepted_at_parse_time_and_rejected_after_rendering(run_dag, emulator, request, capfd):
    with DAG(dag_id_for(request), schedule=None, start_date=START, params={"motion": "medium"}) as dag:
        SubmitVideoOperator(
            task_id="submit",
            prompt="a paper boat",
            image=IMAGE,
            motion="{{ params.motion }}",
            retries=2,
            retry_delay=timedelta(seconds=0),
        )

    dag_run = run_dag(dag)
    output = capfd.readouterr().out

    assert str(dag_run.state) == "failed"
    assert task_states(dag_run) == {("submit", -1): ("failed", 1)}  # permanent: no retry
    message = "Invalid parameter 'motion': must be 'low' or 'high', got 'medium'"
    if AIRFLOW_V_3_1_PLUS:
        assert message in output
    else:
        # Airflow 3.0's dag.test() prints the task's exception as a rich traceback, whose closing paragraph
        # "MidjourneyValidationError: <message>" is wrapped at 80 columns.
        closing = re.search(r"^MidjourneyValidationError: (.*?)\n\n", output, re.MULTILINE | re.DOTALL)
        assert closing is not None, output
        assert " ".join(closing.group(1).split()) == message
    assert emulator.requests == []


# ------------------------------------------------------------------------------------------ parse time


def test_bad_literal_motion_fails_at_parse_time_naming_the_parameter(emulator, mj_conn):
    with pytest.raises(MidjourneyValidationError) as info:
        SubmitVideoOperator(task_id="submit", prompt="a paper boat", image=IMAGE, motion="medium")

    assert info.value.parameter == "motion"
    assert "Invalid parameter 'motion'" in str(info.value)
    assert "'medium'" in str(info.value)
    assert isinstance(info.value, AirflowFailException)
    assert emulator.requests == []


@pytest.mark.parametrize(
    ("kwargs", "parameter"),
    [
        ({"image": "cdn.example.com/a.png"}, "image"),
        ({"image": None}, "image"),
        ({"action": "extend", "mj_task_id": "17960000000000001", "index": 7}, "index"),
        ({"state": "x" * 256}, "state"),
        ({"extra_body": {"prompt": "sneaky"}}, "extra_body"),
        ({"poll_interval": 0}, "poll_interval"),
    ],
)
def test_other_bad_literals_fail_at_parse_time(emulator, mj_conn, kwargs, parameter):
    arguments: dict[str, Any] = {"task_id": "submit", "prompt": "a paper boat", "image": IMAGE, **kwargs}
    with pytest.raises(MidjourneyValidationError) as info:
        SubmitVideoOperator(**arguments)
    assert info.value.parameter == parameter
    assert emulator.requests == []


def test_templated_and_xcom_values_pass_parse_time_checks():
    with DAG("op_parse_only", schedule=None, start_date=START):
        parent = SubmitVideoOperator(task_id="parent", prompt="p", image="{{ params.image }}", motion="{{ m }}")
        extend = SubmitVideoOperator(
            task_id="extend", prompt="p", action="extend", mj_task_id=parent.output, index="{{ params.clip }}"
        )
    assert parent.motion == "{{ m }}"
    assert extend.index == "{{ params.clip }}"
    # A literal mistake is still caught when the other values are templated.
    with pytest.raises(MidjourneyValidationError, match="'motion'"):
        SubmitVideoOperator(task_id="bad", prompt="{{ p }}", image="{{ params.image }}", motion="medium")


# ------------------------------------------------------------------------------------------ unit level


def test_default_state_is_cut_to_255_characters():
    ti = SimpleNamespace(dag_id="d" * 250, task_id="t" * 250, map_index=3)
    state = default_state({"ti": ti, "run_id": "manual__2026-01-01T00:00:00+00:00"})
    assert len(state) == 255
    assert state.startswith("airflow:" + "d" * 247)

    short = default_state({"ti": SimpleNamespace(dag_id="d", task_id="t", map_index=-1), "run_id": "r"})
    assert short == "airflow:d/r/t"
    mapped = default_state({"ti": SimpleNamespace(dag_id="d", task_id="t", map_index=0), "run_id": "r"})
    assert mapped == "airflow:d/r/t[0]"


def test_explicit_state_is_sent_as_given(emulator, mj_conn):
    op = SubmitVideoOperator(task_id="submit", prompt="a paper boat", image=IMAGE, state="campaign-42/shot-7")
    ti = StubTI()

    task_id = op.execute(stub_context(ti))

    assert emulator.requests_to("submit")[0].json["state"] == "campaign-42/shot-7"
    assert emulator.tasks[task_id]["state"] == "campaign-42/shot-7"
    assert ti.pushed[LINK_KEY] == f"{emulator.url}/mj/task/{task_id}/fetch"


def test_deferrable_wait_raises_task_deferred_then_resumes_with_the_trigger_event(emulator, mj_conn):
    op = SubmitVideoOperator(
        task_id="submit",
        prompt="a paper boat",
        image=IMAGE,
        wait_for_completion=True,
        deferrable=True,
        poll_interval=0.2,
        timeout=120,
    )
    ti = StubTI()
    context = stub_context(ti)

    with pytest.raises(TaskDeferred) as info:
        op.execute(context)

    deferred = info.value
    trigger = deferred.trigger
    (task_id,) = emulator.tasks
    assert isinstance(trigger, MidjourneyTaskTrigger)
    assert trigger.mj_task_id == task_id
    assert trigger.midjourney_conn_id == mj_conn
    assert trigger.poll_interval == 0.2
    assert trigger.end_time is not None
    assert 110 < trigger.end_time - pendulum.now("UTC").timestamp() <= 120
    assert deferred.method_name == "execute_complete"
    assert isinstance(deferred.timeout, timedelta)
    assert deferred.timeout.total_seconds() > 120
    assert set(ti.pushed) == {LINK_KEY, USAGE_XCOM_KEY}
    assert ti.pushed[LINK_KEY] == f"{emulator.url}/mj/task/{task_id}/fetch"
    # The paid submission is recorded before the task defers.
    assert [(r["count"], r["mj_task_id"]) for r in ti.pushed[USAGE_XCOM_KEY]] == [(1, task_id)]
    assert emulator.count("fetch") == 0  # the worker only submitted; the trigger polls

    async def first_event() -> dict[str, Any]:
        async for event in trigger.run():
            return event.payload
        raise AssertionError("no event")

    event = asyncio.run(asyncio.wait_for(first_event(), 20))
    assert op.execute_complete(context, event) == task_id
    summary = ti.pushed[TASK_SUMMARY_XCOM_KEY]
    assert summary["id"] == task_id
    assert summary["video_urls"] == [f"{emulator.root_url}/media/{task_id}/{i}.mp4" for i in range(4)]
    assert ti.pushed[LINK_KEY] == summary["video_urls"][0]
    assert emulator.counters["submit_accepted"] == 1


SUCCESS_TASK = {
    "id": "17960000000000001",
    "status": "SUCCESS",
    "progress": "100%",
    "prompt": "a paper boat",
    "videoUrls": [{"url": f"https://cdn.example.com/v/{i}.mp4"} for i in range(4)],
}


def test_execute_complete_on_success_returns_the_id_and_pushes_the_summary():
    op = SubmitVideoOperator(task_id="submit", prompt="p", image=IMAGE, wait_for_completion=True, deferrable=True)
    ti = StubTI()

    result = op.execute_complete(stub_context(ti), decided_event(SUCCESS_TASK))

    assert result == "17960000000000001"
    assert ti.pushed[TASK_SUMMARY_XCOM_KEY]["video_urls"] == [f"https://cdn.example.com/v/{i}.mp4" for i in range(4)]
    assert ti.pushed[TASK_SUMMARY_XCOM_KEY]["status"] == "SUCCESS"
    assert ti.pushed[LINK_KEY] == "https://cdn.example.com/v/0.mp4"


@pytest.mark.parametrize(
    ("outcome", "raw", "status", "reason"),
    [
        (
            WaitOutcome.FAILURE,
            {"id": "17960000000000001", "status": "FAILURE", "failReason": "Prompt flagged by moderation"},
            "FAILURE",
            "Prompt flagged by moderation",
        ),
        (WaitOutcome.CANCEL, {"id": "17960000000000001", "status": "CANCEL"}, "CANCEL", "no reason given"),
        (WaitOutcome.MODAL, {"id": "17960000000000001", "status": "MODAL"}, "MODAL", "manual confirmation"),
    ],
)
def test_execute_complete_on_a_terminal_failure_fails_without_retries(emulator, mj_conn, outcome, raw, status, reason):
    assert decided_event(raw)["status"] == outcome.value
    op = SubmitVideoOperator(task_id="submit", prompt="p", image=IMAGE, wait_for_completion=True, deferrable=True)
    ti = StubTI()

    with pytest.raises(MidjourneyTaskFailedError) as info:
        op.execute_complete(stub_context(ti), decided_event(raw))

    assert isinstance(info.value, AirflowFailException)
    assert info.value.status == status
    assert info.value.mj_task_id == "17960000000000001"
    assert str(info.value).startswith(f"Midjourney task 17960000000000001 ended {status}: ")
    assert reason in str(info.value)
    assert TASK_SUMMARY_XCOM_KEY not in ti.pushed


def test_execute_complete_on_timeout_raises_a_retryable_timeout(emulator, mj_conn):
    op = SubmitVideoOperator(task_id="submit", prompt="p", image=IMAGE, wait_for_completion=True, deferrable=True)
    ti = StubTI()
    task = MidjourneyTask.from_api({"id": "17960000000000001", "status": "IN_PROGRESS", "progress": "40%"})
    decision = WaitTracker(task.id, started_at=0, deadline=50).observe(task, now=100)
    assert decision.outcome is WaitOutcome.TIMEOUT
    event = decision.to_event(task.id)

    with pytest.raises(MidjourneyWaitTimeoutError, match="Timed out waiting for Midjourney task 179600") as info:
        op.execute_complete(stub_context(ti), event)

    assert not isinstance(info.value, AirflowFailException)  # the task's retries apply
    assert info.value.mj_task_id == "17960000000000001"
    assert TASK_SUMMARY_XCOM_KEY not in ti.pushed


def test_execute_complete_on_errors(emulator, mj_conn):
    op = SubmitVideoOperator(task_id="submit", prompt="p", image=IMAGE, wait_for_completion=True, deferrable=True)
    ti = StubTI()
    not_found = WaitTracker("17960000000000001", started_at=0, not_found_grace=1).observe(None)
    assert not_found.outcome is WaitOutcome.ERROR

    with pytest.raises(MidjourneyNotFoundError, match="not found on the server"):
        op.execute_complete(stub_context(ti), not_found.to_event("17960000000000001"))

    no_urls = {"id": "17960000000000001", "status": "SUCCESS", "progress": "100%"}
    with pytest.raises(MidjourneyError) as info:
        op.execute_complete(stub_context(ti), decided_event(no_urls))
    assert type(info.value) is MidjourneyError
    assert "is SUCCESS but reported no video URL" in str(info.value)

    unusable = WaitDecision(WaitOutcome.ERROR, "Cannot poll Midjourney task 1: Connection 'x' is not defined")
    with pytest.raises(MidjourneyError, match="Connection 'x' is not defined"):
        op.execute_complete(stub_context(ti), unusable.to_event("1"))
    assert ti.pushed == {}
