"""
A trigger's ``on_kill`` cancels paid work only when a person stopped the deferred task.

Airflow 3.3's triggerer calls ``on_kill`` for every trigger it stops with its "user action" message, also for
triggers it merely lost to another triggerer; the decision therefore rests on the task instance's state, read
through the triggerer's supervisor channel. These tests pin the decision table, the look-up and the wiring
against the emulator over real HTTP; ``tests/test_triggerer_failover.py`` proves it with real triggerers.
"""

from __future__ import annotations

import asyncio
import logging
import re
import threading
import time
from collections.abc import Callable
from enum import Enum
from types import SimpleNamespace
from typing import Any

import pytest
from helpers import SECRET_KEY

from airflow_provider_mjvideo.hooks.midjourney import MidjourneyHook
from airflow_provider_mjvideo.stopping import (
    StateLookup,
    kill_verdict,
    on_kill_limits,
    states_lookup,
    task_instance_state,
)
from airflow_provider_mjvideo.testing import MidjourneyEmulator
from airflow_provider_mjvideo.triggers.video import MidjourneyTaskTrigger

IMAGE = "https://cdn.example.com/first.png"
RUN_ID = "manual__2026-03-04T00:00:00+00:00"


def the_ti(map_index: int = -1) -> SimpleNamespace:
    """What the triggerer sets as a trigger's ``task_instance`` (the fields the look-up reads)."""
    return SimpleNamespace(dag_id="mjvideo_chain", run_id=RUN_ID, task_id="wait_generate", map_index=map_index)


class _State(str, Enum):
    """Stands for Airflow's ``TaskInstanceState`` (a str enum) in look-up answers."""

    DEFERRED = "deferred"
    FAILED = "failed"
    SUCCESS = "success"


# ------------------------------------------------------------------------------------------ the decision


@pytest.mark.parametrize(
    ("lookup", "cancel", "warn", "words"),
    [
        pytest.param(StateLookup(found=True, state="deferred"), False, False, "still deferred", id="moved-or-stopping"),
        pytest.param(StateLookup(found=True, state="failed"), True, False, "now failed", id="marked-failed"),
        pytest.param(StateLookup(found=True, state="success"), True, False, "now success", id="marked-success"),
        pytest.param(StateLookup(found=True, state="skipped"), True, False, "now skipped", id="marked-skipped"),
        pytest.param(StateLookup(found=True, state=None), False, False, "cleared", id="cleared"),
        pytest.param(
            StateLookup(found=True, state="up_for_retry"), False, False, "up_for_retry: its next try", id="retry"
        ),
        pytest.param(
            StateLookup(found=True, state="scheduled"), False, False, "scheduled: its next try", id="cleared-scheduled"
        ),
        pytest.param(
            StateLookup(found=True, state="queued"), False, False, "queued: its next try", id="cleared-queued"
        ),
        pytest.param(
            StateLookup(found=True, state="running"), False, False, "running: its next try", id="cleared-running"
        ),
        pytest.param(StateLookup(found=False), True, False, "no longer exists", id="run-deleted"),
        pytest.param(StateLookup(error="TimeoutError: no answer"), False, True, "cannot tell", id="lookup-failed"),
    ],
)
def test_kill_verdict(lookup: StateLookup, cancel: bool, warn: bool, words: str) -> None:
    verdict = kill_verdict(lookup)

    assert (verdict.cancel, verdict.warn) == (cancel, warn)
    assert words in verdict.reason


@pytest.mark.parametrize(
    ("answer", "map_index", "expected"),
    [
        pytest.param({RUN_ID: {"wait_generate": "deferred"}}, -1, StateLookup(True, "deferred"), id="unmapped"),
        pytest.param({RUN_ID: {"wait_generate": _State.FAILED}}, -1, StateLookup(True, "failed"), id="enum-state"),
        pytest.param({RUN_ID: {"wait_generate": None}}, -1, StateLookup(True, None), id="no-state"),
        pytest.param({RUN_ID: {"wait_generate_2": "deferred"}}, 2, StateLookup(True, "deferred"), id="mapped"),
        pytest.param({RUN_ID: {"wait_generate": "deferred"}}, 2, StateLookup(False), id="mapped-key-absent"),
        pytest.param({RUN_ID: {"other": "failed"}}, -1, StateLookup(False), id="task-absent"),
        pytest.param({}, -1, StateLookup(False), id="run-absent"),
    ],
)
def test_states_lookup_reads_one_task_instance(answer: dict, map_index: int, expected: StateLookup) -> None:
    assert states_lookup(answer, RUN_ID, "wait_generate", map_index) == expected


# ------------------------------------------------------------------------------------------ the look-up


@pytest.mark.parametrize(("configured", "limits"), [(None, (15.0, 24.0)), ("60", (30.0, 48.0)), ("0", (15.0, 24.0))])
def test_on_kill_stays_within_shares_of_airflows_on_kill_timeout(
    monkeypatch: pytest.MonkeyPatch, configured: str | None, limits: tuple[float, float]
) -> None:
    if configured is None:
        monkeypatch.delenv("AIRFLOW__TRIGGERER__ON_KILL_TIMEOUT", raising=False)
    else:
        monkeypatch.setenv("AIRFLOW__TRIGGERER__ON_KILL_TIMEOUT", configured)

    assert on_kill_limits() == limits


class TaskStates:
    """Stands in for the supervisor's answer to the task-state look-up (only a real triggerer has that channel)."""

    def __init__(self) -> None:
        #: What the next look-ups return (a ``{run_id: {task key: state}}`` map), or raise (an exception).
        self.answer: Any = {}
        #: The keyword arguments of every look-up.
        self.calls: list[dict[str, Any]] = []

    def __call__(self, **kwargs: Any) -> Any:
        self.calls.append(kwargs)
        if isinstance(self.answer, BaseException):
            raise self.answer
        return self.answer


@pytest.fixture
def task_states(monkeypatch: pytest.MonkeyPatch) -> TaskStates:
    """The task SDK's task-state look-up, answered by a :class:`TaskStates` the test sets up."""
    from airflow.sdk.execution_time.task_runner import RuntimeTaskInstance

    states = TaskStates()
    monkeypatch.setattr(RuntimeTaskInstance, "get_task_states", staticmethod(states))
    return states


async def test_lookup_asks_for_exactly_this_task_instance(task_states: TaskStates) -> None:
    task_states.answer = {RUN_ID: {"wait_generate_1": _State.DEFERRED}}

    lookup = await task_instance_state(the_ti(map_index=1))

    assert lookup == StateLookup(found=True, state="deferred")
    assert task_states.calls == [
        {"dag_id": "mjvideo_chain", "map_index": 1, "task_ids": ["wait_generate"], "run_ids": [RUN_ID]}
    ]


async def test_lookup_failure_is_an_error_not_an_exception(task_states: TaskStates) -> None:
    task_states.answer = RuntimeError("supervisor went away")

    lookup = await task_instance_state(the_ti())

    assert lookup == StateLookup(error="RuntimeError: supervisor went away")


async def test_lookup_is_bounded_in_time(monkeypatch: pytest.MonkeyPatch) -> None:
    from airflow.sdk.execution_time.task_runner import RuntimeTaskInstance

    release = threading.Event()

    def never_answers(**kwargs: Any) -> Any:
        release.wait(10)
        return {}

    monkeypatch.setattr(RuntimeTaskInstance, "get_task_states", staticmethod(never_answers))
    started = time.monotonic()
    try:
        lookup = await task_instance_state(the_ti(), timeout=0.2)
    finally:
        release.set()

    assert lookup.error == "no answer from Airflow within 0.2 s"
    assert time.monotonic() - started < 2


async def test_lookup_outside_a_triggerer_cannot_tell() -> None:
    # No supervisor channel here (as in dag.test()'s in-process triggerer): "cannot tell", never "cancel".
    lookup = await task_instance_state(the_ti(), timeout=2)

    assert lookup.error
    assert kill_verdict(lookup).cancel is False


@pytest.mark.parametrize("ti", [None, SimpleNamespace(dag_id="d", run_id="", task_id="t", map_index=-1)])
async def test_lookup_without_a_task_instance_cannot_tell(ti: Any) -> None:
    assert await task_instance_state(ti) == StateLookup(error="the trigger does not know its task instance")


# ------------------------------------------------------------------------------------------ on_kill, wired


@pytest.fixture
def warnings_logged(capfd: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture) -> Callable[[], list[str]]:
    """
    The provider's WARNING messages so far: Airflow 3.1+ prints its structured log to the captured output,
    Airflow 3.0 logs triggers through the standard library (caplog's records).
    """

    def read() -> list[str]:
        records = [
            record.getMessage()
            for record in caplog.records
            if record.levelno == logging.WARNING and record.name.startswith("airflow_provider_mjvideo")
        ]
        printed = re.findall(r"\[warning\s*\] (.*?) \[airflow_provider_mjvideo", capfd.readouterr().out)
        return records or [line.strip() for line in printed]

    return read


def stuck_task(hook: MidjourneyHook) -> str:
    return hook.submit_video("a fox [stuck]", IMAGE, "low")


def killed_trigger(mj_task_id: str, conn_id: str, **kwargs: Any) -> MidjourneyTaskTrigger:
    trigger = MidjourneyTaskTrigger(mj_task_id, midjourney_conn_id=conn_id, poll_interval=0.1, **kwargs)
    trigger.task_instance = the_ti()  # type: ignore[assignment]
    return trigger


@pytest.mark.parametrize(
    ("state", "cancels"),
    [
        pytest.param(_State.FAILED, 1, id="marked-failed"),
        pytest.param(_State.SUCCESS, 1, id="marked-success"),
        pytest.param(None, 0, id="cleared"),
        pytest.param(_State.DEFERRED, 0, id="moved-to-another-triggerer"),
    ],
)
async def test_on_kill_cancels_only_when_a_person_ended_the_task_instance(
    hook: MidjourneyHook,
    emulator: MidjourneyEmulator,
    mj_conn: str,
    task_states: TaskStates,
    state: Any,
    cancels: int,
) -> None:
    mj_task_id = stuck_task(hook)
    task_states.answer = {RUN_ID: {"wait_generate": state}}

    await asyncio.wait_for(killed_trigger(mj_task_id, mj_conn).on_kill(), on_kill_limits()[1] + 5)

    sent = emulator.requests_to("cancel")
    assert [(r.path, r.status) for r in sent] == [(f"/mj/task/{mj_task_id}/cancel", 200)] * cancels
    assert all(r.headers["authorization"] == f"Bearer {SECRET_KEY}" for r in sent)
    assert (emulator.tasks[mj_task_id]["status"] == "CANCEL") is bool(cancels)


async def test_on_kill_of_a_deleted_run_cancels(
    hook: MidjourneyHook, emulator: MidjourneyEmulator, mj_conn: str, task_states: TaskStates
) -> None:
    mj_task_id = stuck_task(hook)
    task_states.answer = {}

    await killed_trigger(mj_task_id, mj_conn).on_kill()

    assert emulator.count("cancel") == 1


async def test_on_kill_that_cannot_read_the_state_keeps_the_task_and_warns(
    hook: MidjourneyHook,
    emulator: MidjourneyEmulator,
    mj_conn: str,
    task_states: TaskStates,
    warnings_logged: Callable[[], list[str]],
) -> None:
    mj_task_id = stuck_task(hook)
    task_states.answer = ConnectionResetError("supervisor channel closed")

    await killed_trigger(mj_task_id, mj_conn).on_kill()

    assert emulator.count("cancel") == 0
    (warning,) = warnings_logged()
    assert f"Trigger of Midjourney task {mj_task_id} stopped; leaving the task running" in warning
    assert "ConnectionResetError: supervisor channel closed" in warning


async def test_on_kill_with_cancel_on_kill_false_asks_and_sends_nothing(
    hook: MidjourneyHook, emulator: MidjourneyEmulator, mj_conn: str, task_states: TaskStates
) -> None:
    mj_task_id = stuck_task(hook)
    task_states.answer = {RUN_ID: {"wait_generate": _State.FAILED}}
    requests_before = len(emulator.requests)

    await killed_trigger(mj_task_id, mj_conn, cancel_on_kill=False).on_kill()

    assert task_states.calls == []
    assert len(emulator.requests) == requests_before


async def test_on_kill_never_raises_when_the_api_is_down(
    hook: MidjourneyHook,
    emulator: MidjourneyEmulator,
    mj_conn: str,
    task_states: TaskStates,
    warnings_logged: Callable[[], list[str]],
) -> None:
    mj_task_id = stuck_task(hook)
    task_states.answer = {RUN_ID: {"wait_generate": _State.FAILED}}
    emulator.stop()

    await asyncio.wait_for(killed_trigger(mj_task_id, mj_conn).on_kill(), on_kill_limits()[1] + 5)

    assert warnings_logged()[-1].startswith(
        f"Could not cancel Midjourney task {mj_task_id} after the deferred task was stopped: Could not connect"
    )


async def test_on_kill_is_bounded_when_the_api_hangs(
    hook: MidjourneyHook,
    emulator: MidjourneyEmulator,
    mj_conn: str,
    task_states: TaskStates,
    warnings_logged: Callable[[], list[str]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    mj_task_id = stuck_task(hook)
    task_states.answer = {RUN_ID: {"wait_generate": _State.FAILED}}
    monkeypatch.setenv("AIRFLOW__TRIGGERER__ON_KILL_TIMEOUT", "2")  # the whole on_kill may take 1.6 s
    emulator.config.response_delay = 4.0  # longer than the whole budget: the cancel never answers in time
    started = time.monotonic()

    await killed_trigger(mj_task_id, mj_conn).on_kill()

    assert time.monotonic() - started < 3.5
    (warning,) = warnings_logged()
    assert warning.startswith(
        f"Could not cancel Midjourney task {mj_task_id} after the deferred task was stopped: no answer within"
    )


async def test_on_kill_finishes_its_cancel_although_the_triggerer_cancels_it_every_loop(
    hook: MidjourneyHook, emulator: MidjourneyEmulator, mj_conn: str, task_states: TaskStates
) -> None:
    # Airflow 3.3's triggerer keeps a stopped trigger in its cancel queue until it has finished and cancels its
    # task again on every loop (about once a second) while on_kill runs; here every 50 ms, on a slow server.
    mj_task_id = stuck_task(hook)
    task_states.answer = {RUN_ID: {"wait_generate": _State.FAILED}}
    emulator.config.response_delay = 0.4
    killing = asyncio.ensure_future(killed_trigger(mj_task_id, mj_conn).on_kill())
    recancels = 0
    while not killing.done():
        await asyncio.sleep(0.05)
        killing.cancel()
        recancels += 1

    assert recancels >= 5
    assert [(r.path, r.status) for r in emulator.requests_to("cancel")] == [(f"/mj/task/{mj_task_id}/cancel", 200)]
    assert emulator.tasks[mj_task_id]["status"] == "CANCEL"


async def test_on_kill_leaves_a_video_that_already_ended_alone(
    hook: MidjourneyHook, emulator: MidjourneyEmulator, mj_conn: str, task_states: TaskStates
) -> None:
    # The task instance also leaves "deferred" by itself: another triggerer saw the video finish while this one
    # was stalled. A finished video is nothing to cancel.
    mj_task_id = stuck_task(hook)
    emulator.complete_task(mj_task_id)
    task_states.answer = {RUN_ID: {"wait_generate": "success"}}

    await killed_trigger(mj_task_id, mj_conn).on_kill()

    assert emulator.count("cancel") == 0
    assert emulator.count("fetch") >= 1
    assert emulator.tasks[mj_task_id]["status"] == "SUCCESS"
