"""``hook_params``: a task tunes its hook's retries (and the trigger's, when it defers), checked when the DAG parses."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from airflow.providers.common.compat.sdk import TaskDeferred

from airflow_provider_mjvideo.exceptions import MidjourneyValidationError
from airflow_provider_mjvideo.hooks.midjourney import MidjourneyHook
from airflow_provider_mjvideo.operators.video import DownloadVideoOperator, SubmitVideoOperator
from airflow_provider_mjvideo.sensors.video import MidjourneyTaskSensor
from airflow_provider_mjvideo.testing import MidjourneyEmulator
from airflow_provider_mjvideo.triggers.video import MidjourneyTaskTrigger
from airflow_provider_mjvideo.validation import check_hook_params

IMAGE = "https://cdn.example.com/first.png"
TUNED = {"retry_limit": 2, "retry_delay": 0.01, "retry_max_delay": 0.02, "list_chunk_size": 7}


def submit_op(**kwargs: Any) -> SubmitVideoOperator:
    return SubmitVideoOperator(task_id="submit", prompt="a fox", image=IMAGE, **kwargs)


def sensor(**kwargs: Any) -> MidjourneyTaskSensor:
    return MidjourneyTaskSensor(task_id="wait", mj_task_id="17960000000000001", **kwargs)


def download(**kwargs: Any) -> DownloadVideoOperator:
    return DownloadVideoOperator(task_id="save", mj_task_id="17960000000000001", destination="file:///tmp/x/", **kwargs)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param(None, {}, id="none"),
        pytest.param({}, {}, id="empty"),
        pytest.param(TUNED, TUNED, id="all"),
        pytest.param({"retry_limit": "3", "retry_delay": "0.5"}, {"retry_limit": 3, "retry_delay": 0.5}, id="strings"),
    ],
)
def test_hook_params_are_checked_into_plain_json(value: Any, expected: dict[str, Any]) -> None:
    checked = check_hook_params(value)

    assert checked == expected
    assert json.loads(json.dumps(checked)) == checked


@pytest.mark.parametrize(
    ("value", "words"),
    [
        pytest.param(["retry_limit", 2], "must be a dict", id="not-a-dict"),
        pytest.param({"retries": 2}, "unknown key(s) 'retries'", id="unknown-key"),
        pytest.param({"retry_limit": 0}, "hook_params.retry_limit", id="zero-attempts"),
        pytest.param({"retry_limit": True}, "hook_params.retry_limit", id="bool"),
        pytest.param({"retry_delay": -1}, "hook_params.retry_delay", id="negative-delay"),
        pytest.param({"list_chunk_size": 1.5}, "hook_params.list_chunk_size", id="fractional-chunk"),
    ],
)
@pytest.mark.parametrize("build", [submit_op, sensor, download], ids=["submit", "sensor", "download"])
def test_bad_hook_params_fail_when_the_dag_is_parsed(build: Any, value: Any, words: str) -> None:
    with pytest.raises(MidjourneyValidationError) as info:
        build(hook_params=value)

    assert words in str(info.value)


@pytest.mark.parametrize("build", [submit_op, sensor, download], ids=["submit", "sensor", "download"])
def test_each_task_builds_its_hook_with_its_hook_params(build: Any) -> None:
    hook = build(midjourney_conn_id="mj_tuned", hook_params=TUNED).hook

    assert isinstance(hook, MidjourneyHook)
    assert hook.midjourney_conn_id == "mj_tuned"
    policy = hook.retry_policy
    assert (policy.max_attempts, policy.initial_delay, policy.max_delay) == (2, 0.01, 0.02)
    assert hook.list_chunk_size == 7


def test_a_task_without_hook_params_gets_the_hooks_defaults() -> None:
    policy = sensor().hook.retry_policy

    assert (policy.max_attempts, policy.initial_delay, policy.max_delay) == (6, 1.0, 30.0)


def test_a_deferring_sensor_hands_its_hook_params_to_the_trigger(
    hook: MidjourneyHook, emulator: MidjourneyEmulator, mj_conn: str
) -> None:
    mj_task_id = hook.submit_video("a fox [stuck]", IMAGE, "low")
    waiting = MidjourneyTaskSensor(
        task_id="wait", mj_task_id=mj_task_id, deferrable=True, poke_interval=0.1, hook_params=TUNED
    )

    with pytest.raises(TaskDeferred) as info:
        waiting.execute({"ti": None})

    trigger = info.value.trigger
    assert isinstance(trigger, MidjourneyTaskTrigger)
    assert trigger.hook_params == TUNED
    assert trigger.serialize()[1]["hook_params"] == TUNED


async def test_the_trigger_polls_with_the_hook_params_it_was_given(
    hook: MidjourneyHook, emulator: MidjourneyEmulator, mj_conn: str, capfd: pytest.CaptureFixture[str]
) -> None:
    mj_task_id = hook.submit_video("a fox", IMAGE, "low")
    emulator.config.fail_next = [("fetch", "500")]
    trigger = MidjourneyTaskTrigger(
        mj_task_id, midjourney_conn_id=mj_conn, poll_interval=0.1, hook_params={"retry_limit": 3, "retry_delay": 0.01}
    )

    async def first_event() -> dict[str, Any]:
        async for event in trigger.run():
            return event.payload
        raise AssertionError("no event")

    event = await asyncio.wait_for(first_event(), 20)

    assert event["status"] == "success"
    out = capfd.readouterr().out
    assert f"fetch of task {mj_task_id} failed (attempt 1 of 3)" in out
