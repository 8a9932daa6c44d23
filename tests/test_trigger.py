"""MidjourneyTaskTrigger driven with pytest-asyncio against the emulator over real HTTP on 127.0.0.1."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from datetime import timedelta
from typing import Any

import pytest
from airflow.providers.common.compat.module_loading import import_string
from airflow.providers.common.compat.sdk import BaseHook
from airflow.providers.common.compat.version_compat import AIRFLOW_V_3_1_PLUS, AIRFLOW_V_3_2_PLUS
from helpers import SECRET_KEY, connection_json

from airflow_provider_mjvideo.exceptions import (
    MidjourneyNotFoundError,
    MidjourneyTaskFailedError,
    MidjourneyWaitTimeoutError,
)
from airflow_provider_mjvideo.hooks.midjourney import MidjourneyHook
from airflow_provider_mjvideo.testing import MidjourneyEmulator
from airflow_provider_mjvideo.triggers.video import (
    DEADLINE_ANSWER_GRACE,
    DEFER_TIMEOUT_MARGIN,
    MidjourneyTaskTrigger,
)
from airflow_provider_mjvideo.waiting import result_or_raise

IMAGE = "https://cdn.example.com/first.png"
CLASSPATH = "airflow_provider_mjvideo.triggers.video.MidjourneyTaskTrigger"
#: An id the emulator has never issued (its ids are 17 digits, odd, derived from the clock).
UNKNOWN_ID = "10000000000000001"
#: Upper bound for any single trigger run in these tests: a hang fails instead of blocking the suite.
RUN_LIMIT = 20.0


@pytest.fixture(params=["batched", "per_task"])
def either_conn(request: pytest.FixtureRequest, mj_conn: str, emulator: MidjourneyEmulator, monkeypatch) -> str:
    """``midjourney_default`` with the shared poller (the default) or with one fetch per task per interval."""
    monkeypatch.setenv(
        "AIRFLOW_CONN_MIDJOURNEY_DEFAULT", connection_json(emulator, batch_polling=request.param == "batched")
    )
    return mj_conn


def submit(hook: MidjourneyHook, prompt: str = "a red fox in snow") -> str:
    return hook.submit_video(prompt, IMAGE, "low")


async def collect(trigger: MidjourneyTaskTrigger, limit: float = RUN_LIMIT) -> list[dict[str, Any]]:
    """Run the trigger to its end and return every event payload it yielded."""
    events: list[dict[str, Any]] = []

    async def drain() -> None:
        async for event in trigger.run():
            events.append(event.payload)

    await asyncio.wait_for(drain(), limit)
    return events


def clip_urls(emu: MidjourneyEmulator, task_id: str, count: int = 4) -> list[str]:
    return [f"{emu.root_url}/media/{task_id}/{i}.mp4" for i in range(count)]


# ------------------------------------------------------------------------------------------ outcomes


async def test_success_event_carries_the_summary_with_four_video_urls(hook, emulator, either_conn):
    task_id = submit(hook)
    trigger = MidjourneyTaskTrigger(task_id, midjourney_conn_id=either_conn, poll_interval=0.1)

    events = await collect(trigger)

    assert len(events) == 1
    event = events[0]
    assert event["status"] == "success"
    assert event["mj_task_id"] == task_id
    assert event["message"] == f"Midjourney task {task_id} succeeded with 4 video URL(s)"
    summary = event["task"]
    assert summary["id"] == task_id
    assert summary["status"] == "SUCCESS"
    assert summary["progress"] == 100
    assert summary["video_urls"] == clip_urls(emulator, task_id)
    assert summary["prompt"] == "a red fox in snow"
    assert json.loads(json.dumps(event)) == event  # plain JSON, as Airflow 3.2+ demands
    assert result_or_raise(event) == summary
    assert emulator.count("fetch") >= 2  # it waited: the first poll saw the task unfinished


@pytest.mark.parametrize(
    ("marker", "status", "server_status", "reason"),
    [
        ("[fail]", "failure", "FAILURE", "Emulated failure"),
        ("[cancel]", "cancel", "CANCEL", "no reason given"),
        ("[modal]", "modal", "MODAL", "waits for a manual confirmation"),
    ],
)
async def test_terminal_failures_end_with_their_event_and_the_servers_reason(
    hook, emulator, mj_conn, marker, status, server_status, reason
):
    task_id = submit(hook, f"a fox {marker}")
    trigger = MidjourneyTaskTrigger(task_id, midjourney_conn_id=mj_conn, poll_interval=0.1)

    events = await collect(trigger)

    assert [event["status"] for event in events] == [status]
    event = events[0]
    assert event["mj_task_id"] == task_id
    assert event["message"].startswith(f"Midjourney task {task_id} ended {server_status}: ")
    assert reason in event["message"]
    assert event["task"]["status"] == server_status
    assert event["task"]["video_urls"] == []
    with pytest.raises(MidjourneyTaskFailedError, match=reason) as info:
        result_or_raise(event)
    assert info.value.status == server_status


async def test_failure_reason_set_on_the_server_reaches_the_event(hook, emulator, mj_conn):
    emulator.config.video_duration = 30.0
    task_id = submit(hook)
    emulator.fail_task(task_id, "Job rejected by the moderation filter")
    trigger = MidjourneyTaskTrigger(task_id, midjourney_conn_id=mj_conn, poll_interval=0.1)

    events = await collect(trigger)

    assert events[0]["status"] == "failure"
    assert events[0]["message"] == (f"Midjourney task {task_id} ended FAILURE: Job rejected by the moderation filter")
    assert events[0]["task"]["fail_reason"] == "Job rejected by the moderation filter"


async def test_timeout_event_is_emitted_by_the_trigger_at_end_time_not_a_poll_later(hook, emulator, either_conn):
    task_id = submit(hook, "a fox [stuck]")
    end_time = time.time() + 0.3
    trigger = MidjourneyTaskTrigger(task_id, midjourney_conn_id=either_conn, poll_interval=5.0, end_time=end_time)

    events = await collect(trigger, limit=3.0)
    arrived = time.time()

    assert [event["status"] for event in events] == ["timeout"]
    assert end_time <= arrived < end_time + 0.7  # the 5 s poll interval was cut short at the deadline
    assert events[0]["message"].startswith(f"Timed out waiting for Midjourney task {task_id}")
    assert events[0]["task"]["status"] == "IN_PROGRESS"
    assert emulator.count("fetch") in (1, 2)  # a first poll (per-task: after a jitter) and one at the deadline
    with pytest.raises(MidjourneyWaitTimeoutError):
        result_or_raise(events[0])


async def test_timeout_event_is_on_time_even_while_every_poll_fails(hook, emulator, either_conn):
    task_id = submit(hook, "a fox [stuck]")
    emulator.config.faults.fetch = {"503": 1.0}  # the server answers nothing but 503 from now on
    # 0.6 s: long enough for the hook to retry a first failed poll (its first backoff is at most 1 s, and the
    # trigger waits DEADLINE_ANSWER_GRACE = 1 s past the deadline for an answer), so the retries are in play.
    end_time = time.time() + 0.6
    trigger = MidjourneyTaskTrigger(task_id, midjourney_conn_id=either_conn, poll_interval=0.2, end_time=end_time)

    events = await collect(trigger, limit=60.0)
    arrived = time.time()

    assert [event["status"] for event in events] == ["timeout"]
    assert events[0]["message"].startswith(f"Timed out waiting for Midjourney task {task_id}")
    # The hook's retries (up to ~30 s of backoff per poll) must not hold the event back past the deadline:
    # Airflow's own deferral timeout would then fire first and skip execute_complete.
    assert arrived < end_time + DEADLINE_ANSWER_GRACE + 1.0
    assert emulator.counters["faults"]["503"] >= 2


async def test_wait_built_with_for_wait_times_out_by_itself_before_the_deferral_timeout(hook, emulator, mj_conn):
    task_id = submit(hook, "a fox [stuck]")
    started = time.time()
    trigger, defer_timeout = MidjourneyTaskTrigger.for_wait(
        task_id, midjourney_conn_id=mj_conn, poll_interval=3.0, timeout=0.3, started_at=started
    )

    events = await collect(trigger, limit=3.0)

    assert events[0]["status"] == "timeout"
    assert 0.3 <= time.time() - started < 0.3 + 0.7
    assert isinstance(defer_timeout, timedelta)
    assert defer_timeout.total_seconds() > 0.3 + DEFER_TIMEOUT_MARGIN


# ------------------------------------------------------------------------------------------ transient faults


@pytest.mark.parametrize("fault", ["500", "429", "503", "drop", "malformed"])
async def test_a_transient_fetch_fault_is_retried_and_never_becomes_an_event(hook, emulator, either_conn, capfd, fault):
    task_id = submit(hook)
    emulator.config.faults.retry_after = 0.2
    emulator.config.fail_next = [("fetch", fault)]
    trigger = MidjourneyTaskTrigger(task_id, midjourney_conn_id=either_conn, poll_interval=0.1)

    events = await collect(trigger)

    assert [event["status"] for event in events] == ["success"]
    assert events[0]["task"]["video_urls"] == clip_urls(emulator, task_id)
    fetches = emulator.requests_to("fetch")
    assert fetches[0].fault == fault  # the very first poll hit the fault...
    assert fetches[1].fault is None  # ...and was simply tried again
    assert fetches[1].status == 200
    assert emulator.counters["faults"] == {fault: 1}
    if fault == "429":
        # Retry-After honoured: the trigger's hook waited exactly what the server asked, not a random backoff.
        assert fetches[1].time - fetches[0].time >= 0.2
        out, err = capfd.readouterr()
        assert [line for line in (out + err).splitlines() if "retrying in" in line and "HTTP 429" in line], out + err
        assert "retrying in 0.20 s" in out + err


async def test_random_fetch_faults_of_every_kind_never_become_an_error_event(hook, emulator, either_conn):
    emulator.config.video_duration = 1.5
    task_id = submit(hook)
    emulator.config.faults.seed = 7
    emulator.config.faults.retry_after = 0.05
    emulator.config.faults.fetch = {"500": 0.06, "503": 0.06, "429": 0.06, "drop": 0.06, "malformed": 0.06}
    trigger = MidjourneyTaskTrigger(task_id, midjourney_conn_id=either_conn, poll_interval=0.05)

    events = await collect(trigger, limit=30.0)

    assert [event["status"] for event in events] == ["success"]
    assert events[0]["task"]["video_urls"] == clip_urls(emulator, task_id)
    faults = emulator.counters["faults"]
    assert sum(faults.values()) >= 2, faults  # faults really were served during the wait
    assert sum(faults.values()) < emulator.count("fetch")


async def test_a_refused_key_while_polling_is_an_error_event_without_retries(emulator, monkeypatch):
    monkeypatch.setenv(
        "AIRFLOW_CONN_MJ_WRONG_KEY",
        json.dumps({"conn_type": "midjourney", "host": emulator.url, "password": "not-the-key"}),
    )
    trigger = MidjourneyTaskTrigger(UNKNOWN_ID, midjourney_conn_id="mj_wrong_key", poll_interval=0.1)

    events = await collect(trigger)

    assert [event["status"] for event in events] == ["error"]
    assert "HTTP 401" in events[0]["message"]
    assert emulator.count("fetch") == 1


# ------------------------------------------------------------------------------------------ unknown ids and URLs


@pytest.mark.parametrize("flavor", ["trueai", "newapi"])
async def test_unknown_id_is_waited_on_within_the_grace(emulator, mj_conn, flavor):
    emulator.config.flavor = flavor
    trigger = MidjourneyTaskTrigger(UNKNOWN_ID, midjourney_conn_id=mj_conn, poll_interval=0.05, not_found_grace=30)
    events: list[dict[str, Any]] = []

    async def drain() -> None:
        async for event in trigger.run():
            events.append(event.payload)

    with pytest.raises(asyncio.TimeoutError):
        await asyncio.wait_for(drain(), 0.3)

    assert events == []
    assert emulator.count("fetch") >= 3  # it kept polling


@pytest.mark.parametrize("flavor", ["novicezk", "newapi"])
async def test_unknown_id_past_the_grace_is_an_error_event(emulator, either_conn, flavor):
    emulator.config.flavor = flavor
    started = time.time()
    trigger = MidjourneyTaskTrigger(
        UNKNOWN_ID, midjourney_conn_id=either_conn, poll_interval=0.05, started_at=started, not_found_grace=0.2
    )

    events = await collect(trigger, limit=5.0)

    assert time.time() - started >= 0.2  # the trigger's grace, counted from started_at, not the default minute
    assert emulator.count("fetch") >= 2  # polled within the grace, then decided
    assert [event["status"] for event in events] == ["error"]
    assert f"Midjourney task {UNKNOWN_ID} not found on the server" in events[0]["message"]
    assert events[0]["task"] is None
    with pytest.raises(MidjourneyNotFoundError):
        result_or_raise(events[0])


async def test_success_without_urls_is_tolerated_within_the_grace(hook, emulator, mj_conn):
    emulator.config.video_duration = 0.2
    emulator.config.urls_after_success = 0.2
    task_id = submit(hook)
    trigger = MidjourneyTaskTrigger(task_id, midjourney_conn_id=mj_conn, poll_interval=0.05, missing_urls_grace=10)

    events = await collect(trigger)

    assert [event["status"] for event in events] == ["success"]
    assert events[0]["task"]["video_urls"] == clip_urls(emulator, task_id)
    success_at = emulator.tasks[task_id]["submit_mono"] + 0.2
    polls_without_urls = [r for r in emulator.requests_to("fetch") if success_at < r.time < success_at + 0.2]
    assert polls_without_urls  # it really saw SUCCESS without URLs, and waited on


async def test_success_without_urls_past_the_grace_is_an_error_event(hook, emulator, mj_conn):
    emulator.config.video_duration = 0.2
    emulator.config.urls_after_success = 30
    task_id = submit(hook)
    trigger = MidjourneyTaskTrigger(task_id, midjourney_conn_id=mj_conn, poll_interval=0.05, missing_urls_grace=0.1)

    events = await collect(trigger, limit=5.0)

    assert [event["status"] for event in events] == ["error"]
    assert f"Midjourney task {task_id} is SUCCESS but reported no video URL" in events[0]["message"]
    assert events[0]["task"]["status"] == "SUCCESS"


# ------------------------------------------------------------------------------------------ connection


async def test_unknown_connection_id_is_an_error_event_with_a_clear_message(emulator):
    trigger = MidjourneyTaskTrigger(UNKNOWN_ID, midjourney_conn_id="no_such_conn", poll_interval=0.1)

    events = await collect(trigger)

    assert [event["status"] for event in events] == ["error"]
    message = events[0]["message"]
    assert "'no_such_conn' is not defined" in message
    assert "AIRFLOW_CONN_NO_SUCH_CONN" in message
    assert emulator.requests == []


async def test_connection_is_read_through_the_async_path(hook, emulator, mj_conn, monkeypatch):
    task_id = submit(hook)
    loop_thread = threading.get_ident()
    calls: list[str] = []
    real_get_connection = BaseHook.get_connection.__func__

    def forbidden(cls, conn_id: str, *args: Any, **kwargs: Any) -> Any:
        calls.append(conn_id)
        # Airflow 3.0 has no BaseHook.aget_connection: there common-compat's get_async_connection runs the
        # synchronous get_connection in a worker thread (sync_to_async), which never blocks the event loop.
        if AIRFLOW_V_3_1_PLUS or threading.get_ident() == loop_thread:
            raise RuntimeError("synchronous get_connection called inside the triggerer")
        return real_get_connection(cls, conn_id, *args, **kwargs)

    monkeypatch.setattr(BaseHook, "get_connection", classmethod(forbidden))
    with pytest.raises(RuntimeError, match="synchronous get_connection"):
        MidjourneyHook(mj_conn).settings  # noqa: B018 - the patch is in force for sync callers
    calls.clear()

    events = await collect(MidjourneyTaskTrigger(task_id, midjourney_conn_id=mj_conn, poll_interval=0.1))

    assert [event["status"] for event in events] == ["success"]
    assert calls == ([] if AIRFLOW_V_3_1_PLUS else [mj_conn])


# ------------------------------------------------------------------------------------------ serialisation


def test_serialize_round_trip_is_json_and_has_no_secret(mj_conn):
    trigger = MidjourneyTaskTrigger(
        "17960000000000001",
        midjourney_conn_id=mj_conn,
        poll_interval=0.25,
        end_time=1_900_000_000.5,
        started_at=1_899_999_000.25,
        not_found_grace=12.0,
        missing_urls_grace=34.0,
        cancel_on_kill=False,
    )

    classpath, kwargs = trigger.serialize()

    assert classpath == CLASSPATH
    assert kwargs["mj_task_id"] == "17960000000000001"
    assert kwargs["midjourney_conn_id"] == mj_conn
    assert kwargs["poll_interval"] == 0.25
    assert kwargs["end_time"] == 1_900_000_000.5
    assert kwargs["started_at"] == 1_899_999_000.25
    assert kwargs["not_found_grace"] == 12.0
    assert kwargs["missing_urls_grace"] == 34.0
    assert kwargs["cancel_on_kill"] is False
    text = json.dumps(kwargs)
    assert json.loads(text) == kwargs
    assert SECRET_KEY not in text
    assert not {"password", "api_key", "key", "headers"} & set(kwargs)
    rebuilt = import_string(classpath)(**json.loads(text))
    assert rebuilt.serialize() == (classpath, kwargs)


def test_serialize_round_trip_without_deadline_and_through_airflow_serde():
    # serde moved from airflow-core to the Task SDK in Airflow 3.2.
    if AIRFLOW_V_3_2_PLUS:
        from airflow.sdk.serde import deserialize, serialize
    else:
        from airflow.serialization.serde import deserialize, serialize

    trigger = MidjourneyTaskTrigger(UNKNOWN_ID)
    classpath, kwargs = trigger.serialize()

    assert kwargs["end_time"] is None
    assert kwargs["midjourney_conn_id"] == "midjourney_default"
    assert isinstance(kwargs["started_at"], float)
    assert abs(kwargs["started_at"] - time.time()) < 5
    again = deserialize(serialize(kwargs))
    assert MidjourneyTaskTrigger(**again).serialize() == (classpath, kwargs)


def test_for_wait_defers_for_longer_than_the_triggers_own_deadline(mj_conn):
    before = time.time()
    trigger, defer_timeout = MidjourneyTaskTrigger.for_wait(
        "17960000000000001", midjourney_conn_id=mj_conn, poll_interval=7.0, timeout=100.0, started_at=before - 3
    )

    assert trigger.end_time is not None
    assert before + 100.0 <= trigger.end_time <= time.time() + 100.0
    assert trigger.poll_interval == 7.0
    assert trigger.started_at == before - 3
    assert defer_timeout is not None
    # Airflow's deferral timeout, counted from now, must end after the trigger's own deadline.
    assert before + defer_timeout.total_seconds() > trigger.end_time + 2 * 7.0
    assert defer_timeout.total_seconds() == 100.0 + DEFER_TIMEOUT_MARGIN + 2 * 7.0


def test_for_wait_without_timeout_waits_forever(mj_conn):
    trigger, defer_timeout = MidjourneyTaskTrigger.for_wait(
        "17960000000000001", midjourney_conn_id=mj_conn, poll_interval=7.0, timeout=None
    )
    assert trigger.end_time is None
    assert defer_timeout is None


async def test_triggerer_restart_resumes_the_wait_without_a_second_submission(hook, emulator, either_conn):
    emulator.config.video_duration = 0.8
    submitted_at = time.time()
    task_id = submit(hook)
    trigger, _ = MidjourneyTaskTrigger.for_wait(
        task_id, midjourney_conn_id=either_conn, poll_interval=0.05, timeout=30, started_at=submitted_at
    )
    classpath, kwargs = trigger.serialize()
    stored = json.dumps(kwargs)  # what the metadata database keeps

    first_run = asyncio.ensure_future(collect(trigger))
    while emulator.count("fetch") < 2 and not first_run.done():  # the first run is polling
        await asyncio.sleep(0.01)
    assert not first_run.done()
    first_run.cancel()  # the triggerer goes away mid-wait
    with pytest.raises(asyncio.CancelledError):
        await first_run
    await asyncio.sleep(0.05)  # a request already on the wire may still land
    polls_before_restart = emulator.count("fetch")
    assert polls_before_restart >= 2
    await asyncio.sleep(4 * 0.05)  # four poll intervals
    assert emulator.count("fetch") == polls_before_restart  # the old run really stopped polling

    rebuilt = import_string(classpath)(**json.loads(stored))
    events = await collect(rebuilt)

    assert [event["status"] for event in events] == ["success"]
    assert events[0]["mj_task_id"] == task_id
    assert events[0]["task"]["video_urls"] == clip_urls(emulator, task_id)
    assert emulator.count("fetch") > polls_before_restart
    assert emulator.count("submit") == 1
    assert emulator.counters["submit_accepted"] == 1
