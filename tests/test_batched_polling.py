"""The shared batched poller: many deferred waits, few list-by-condition requests, each its own answer.

Against the emulator over real HTTP on 127.0.0.1 (and, for rejections the emulator cannot make, a fake
API). No timing assertions: request counts are bounded by the number of poll intervals that elapsed.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import threading
import time
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from typing import Any

import pytest
from helpers import SECRET_KEY, connection_json

from airflow_provider_mjvideo.connection import DEFAULT_LIST_CHUNK_SIZE, OWN_EXTRA_KEYS, ConnectionSettings
from airflow_provider_mjvideo.exceptions import (
    MidjourneyConfigurationError,
    MidjourneyError,
    MidjourneyNotFoundError,
    MidjourneyRejectedError,
    MidjourneyResponseError,
)
from airflow_provider_mjvideo.hooks.midjourney import MidjourneyHook
from airflow_provider_mjvideo.models import MidjourneyTask
from airflow_provider_mjvideo.testing import EmulatorConfig, MidjourneyEmulator
from airflow_provider_mjvideo.triggers import polling
from airflow_provider_mjvideo.triggers.polling import PollerKey, active_pollers, subscribe
from airflow_provider_mjvideo.triggers.video import MidjourneyTaskTrigger

IMAGE = "https://cdn.example.com/first.png"
CONN_ID = "mj_batch"
UNKNOWN_ID = "10000000000000001"
#: Upper bound for any wait in these tests: a hang fails instead of blocking the suite.
RUN_LIMIT = 60.0
#: Requests a batched run may send beyond ``chunks x intervals``: the jittered first tick, a tick
#: with a single id left (a fetch) and the interval in progress when the last event arrives.
SMALL_BOUND = 6
FALLBACK_LOG = "does not serve list-by-condition"


@pytest.fixture
def emulator_config() -> EmulatorConfig:
    """One-second videos: several polls per wait at half-second intervals."""
    return EmulatorConfig(api_key=SECRET_KEY, video_duration=1.0, auth_style="bearer")


def use_connection(monkeypatch: pytest.MonkeyPatch, emu: MidjourneyEmulator, **extra: Any) -> str:
    monkeypatch.setenv(f"AIRFLOW_CONN_{CONN_ID.upper()}", connection_json(emu, **extra))
    return CONN_ID


def submit_many(emu: MidjourneyEmulator, prompts: list[str]) -> list[str]:
    """Submit one video per prompt through the sync hook, a few at a time; return the ids in prompt order."""
    local = threading.local()
    hooks: list[MidjourneyHook] = []

    def submit(prompt: str) -> str:
        if not hasattr(local, "hook"):
            local.hook = MidjourneyHook(CONN_ID, retry_delay=0.01, retry_max_delay=0.05)
            hooks.append(local.hook)
        return local.hook.submit_video(prompt, IMAGE, "low")

    try:
        with ThreadPoolExecutor(max_workers=8) as pool:
            return list(pool.map(submit, prompts))
    finally:
        for hook in hooks:
            hook.close()


def expected_status(prompt: str) -> str:
    return {"[fail]": "failure", "[cancel]": "cancel"}.get(prompt.split()[-1], "success")


async def first_event(trigger: MidjourneyTaskTrigger) -> dict[str, Any]:
    async for event in trigger.run():
        return event.payload
    raise AssertionError("the trigger ended without an event")


async def run_all(triggers: list[MidjourneyTaskTrigger]) -> list[dict[str, Any]]:
    return await asyncio.wait_for(asyncio.gather(*(first_event(t) for t in triggers)), RUN_LIMIT)


def polling_requests(emu: MidjourneyEmulator, since: float = 0.0) -> list[Any]:
    return [r for r in emu.requests if r.route in ("list", "fetch") and r.time >= since]


def ids_asked(request: Any) -> list[str]:
    if request.route == "list":
        return [str(i) for i in request.json["ids"]]
    return [request.path.split("/")[-2]]


async def wait_until(condition: Callable[[], bool], limit: float = RUN_LIMIT) -> None:
    deadline = time.monotonic() + limit
    while not condition():
        assert time.monotonic() < deadline, "condition not reached"
        await asyncio.sleep(0.02)


# ------------------------------------------------------------------------------------------ many waits


async def test_200_concurrent_triggers_each_get_their_own_result_with_one_request_per_chunk_per_interval(
    emulator, monkeypatch
):
    chunk, interval = 50, 0.5
    conn_id = use_connection(monkeypatch, emulator, list_chunk_size=chunk)
    prompts = [f"video {i} {['ok', '[fail]', 'ok', '[cancel]', 'ok'][i % 5]}" for i in range(200)]
    ids = submit_many(emulator, prompts)
    triggers = [MidjourneyTaskTrigger(i, midjourney_conn_id=conn_id, poll_interval=interval) for i in ids]
    started = time.monotonic()

    events = await run_all(triggers)
    elapsed = time.monotonic() - started

    for task_id, prompt, event in zip(ids, prompts, events, strict=True):
        assert event["mj_task_id"] == task_id
        assert event["task"]["id"] == task_id
        assert event["task"]["prompt"] == prompt
        assert event["status"] == expected_status(prompt), event["message"]
        if event["status"] == "success":
            assert event["task"]["video_urls"] == [f"{emulator.root_url}/media/{task_id}/{n}.mp4" for n in range(4)]
    sent = polling_requests(emulator, since=started)
    lists = [r for r in sent if r.route == "list"]
    intervals = math.ceil(elapsed / interval) + 1
    chunks = math.ceil(len(ids) / chunk)
    assert len(sent) <= chunks * intervals + SMALL_BOUND, (len(sent), chunks, intervals)
    assert len(sent) < len(ids)  # fewer requests in the whole run than one round of per-task polling
    assert all(len(r.json["ids"]) <= chunk for r in lists)
    assert {i for r in lists for i in ids_asked(r)} == set(ids)  # every id was listed
    assert all(r.status == 200 for r in sent)
    assert active_pollers() == []  # the last trigger to leave closed the poller


async def test_the_same_id_waited_on_twice_is_asked_for_once_per_tick(emulator, monkeypatch):
    conn_id = use_connection(monkeypatch, emulator)
    ids = submit_many(emulator, ["a fox", "an owl"])
    triggers = [MidjourneyTaskTrigger(i, midjourney_conn_id=conn_id, poll_interval=0.3) for i in [*ids, *ids]]

    events = await run_all(triggers)

    assert [e["mj_task_id"] for e in events] == [*ids, *ids]
    assert {e["status"] for e in events} == {"success"}
    for request in emulator.requests_to("list"):
        assert sorted(request.json["ids"]) == sorted(set(request.json["ids"]))


async def test_cancelling_half_of_the_waits_leaves_the_others_correct(emulator, monkeypatch):
    conn_id = use_connection(monkeypatch, emulator, list_chunk_size=20)
    ids = submit_many(emulator, [f"video {i} [stuck]" for i in range(60)])
    triggers = [MidjourneyTaskTrigger(i, midjourney_conn_id=conn_id, poll_interval=0.3) for i in ids]
    runs = [asyncio.ensure_future(first_event(t)) for t in triggers]
    await wait_until(lambda: bool(active_pollers()) and active_pollers()[0].ticks >= 2)
    assert not any(run.done() for run in runs)

    poller = active_pollers()[0]
    ticks_at_cancel = poller.ticks
    for run in runs[::2]:
        run.cancel()
    # The tick in flight may still carry cancelled ids; every tick started after the next one ends cannot.
    await wait_until(lambda: poller.ticks >= ticks_at_cancel + 2)
    mark = time.monotonic()
    await wait_until(lambda: poller.ticks >= ticks_at_cancel + 3)
    for task_id in ids[1::2]:
        emulator.complete_task(task_id)
    events = await asyncio.wait_for(asyncio.gather(*runs[1::2]), RUN_LIMIT)

    assert all(run.cancelled() for run in runs[::2])
    assert [e["mj_task_id"] for e in events] == ids[1::2]
    assert {e["status"] for e in events} == {"success"}
    asked_after = {i for r in polling_requests(emulator, since=mark) for i in ids_asked(r)}
    assert asked_after  # the survivors were still being polled...
    assert not asked_after & set(ids[::2])  # ...and the cancelled ids no longer were
    assert active_pollers() == []


async def test_waits_join_and_leave_one_poller_at_any_time_with_different_intervals(emulator, monkeypatch):
    conn_id = use_connection(monkeypatch, emulator, list_chunk_size=10)
    first_ids = submit_many(emulator, [f"first {i}" for i in range(15)])
    first = [
        asyncio.ensure_future(first_event(MidjourneyTaskTrigger(i, midjourney_conn_id=conn_id, poll_interval=0.3)))
        for i in first_ids
    ]
    await wait_until(lambda: bool(active_pollers()) and active_pollers()[0].ticks >= 1)
    poller = active_pollers()[0]

    second_ids = submit_many(emulator, [f"second {i}" for i in range(15)])
    second = [
        asyncio.ensure_future(first_event(MidjourneyTaskTrigger(i, midjourney_conn_id=conn_id, poll_interval=0.2)))
        for i in second_ids
    ]
    await wait_until(lambda: poller.subscriber_count == 30 or any(run.done() for run in first))
    assert active_pollers() == [poller]  # the newcomers joined the running poller

    events = await asyncio.wait_for(asyncio.gather(*first, *second), RUN_LIMIT)

    assert [e["mj_task_id"] for e in events] == [*first_ids, *second_ids]
    assert {e["status"] for e in events} == {"success"}
    assert poller.closed
    assert active_pollers() == []


async def test_a_slow_interval_is_not_dragged_along_by_a_fast_one(emulator, monkeypatch):
    conn_id = use_connection(monkeypatch, emulator)
    emulator.config.video_duration = 1.0
    fast_id, slow_id = submit_many(emulator, ["fast", "slow [stuck]"])
    slow = asyncio.ensure_future(
        first_event(MidjourneyTaskTrigger(slow_id, midjourney_conn_id=conn_id, poll_interval=30))
    )
    fast = await asyncio.wait_for(
        first_event(MidjourneyTaskTrigger(fast_id, midjourney_conn_id=conn_id, poll_interval=0.1)), RUN_LIMIT
    )
    slow.cancel()

    assert fast["status"] == "success"
    asked = [ids_asked(r) for r in polling_requests(emulator)]
    assert sum(fast_id in a for a in asked) >= 5  # polled every 0.1 s...
    assert sum(slow_id in a for a in asked) == 1  # ...while the 30 s wait was asked about once


# ------------------------------------------------------------------------------------------ unknown ids, errors


async def test_an_id_missing_from_the_list_is_fetched_alone_and_fails_after_its_grace(emulator, monkeypatch):
    conn_id = use_connection(monkeypatch, emulator)
    ids = submit_many(emulator, ["a fox", "an owl", "a hare"])
    started = time.time()
    triggers = [MidjourneyTaskTrigger(i, midjourney_conn_id=conn_id, poll_interval=0.2) for i in ids]
    unknown = MidjourneyTaskTrigger(
        UNKNOWN_ID, midjourney_conn_id=conn_id, poll_interval=0.2, started_at=started, not_found_grace=1.5
    )

    events = await run_all([*triggers, unknown])

    assert [e["status"] for e in events] == ["success"] * 3 + ["error"]
    assert f"Midjourney task {UNKNOWN_ID} not found on the server" in events[-1]["message"]
    assert time.time() - started >= 1.5  # it was tolerated for its grace
    lists = emulator.requests_to("list")
    assert any(UNKNOWN_ID in r.json["ids"] for r in lists)
    fetched = [r.path for r in emulator.requests_to("fetch")]
    assert f"/mj/task/{UNKNOWN_ID}/fetch" in fetched  # left out of the list answer: asked for alone
    assert len(fetched) >= 2


async def test_a_server_without_the_list_route_falls_back_to_per_task_fetches_logged_once(
    emulator, monkeypatch, caplog
):
    emulator.config.list_by_condition_enabled = False
    conn_id = use_connection(monkeypatch, emulator, list_chunk_size=10)
    ids = submit_many(emulator, [f"video {i}" for i in range(25)])
    triggers = [MidjourneyTaskTrigger(i, midjourney_conn_id=conn_id, poll_interval=0.3) for i in ids]

    with caplog.at_level(logging.WARNING, logger=polling.__name__):
        events = await run_all(triggers)

    assert [e["mj_task_id"] for e in events] == ids
    assert {e["status"] for e in events} == {"success"}
    lists = emulator.requests_to("list")
    assert 1 <= len(lists) <= 3  # only the chunks of the first tick tried the route
    assert {r.status for r in lists} == {404}
    assert {r.path.split("/")[-2] for r in emulator.requests_to("fetch")} == set(ids)
    assert sum(FALLBACK_LOG in r.getMessage() for r in caplog.records) == 1


async def test_a_gateway_that_caps_the_ids_per_list_gets_smaller_chunks(emulator, monkeypatch, caplog):
    emulator.config.max_list_ids = 10
    conn_id = use_connection(monkeypatch, emulator, list_chunk_size=40)
    ids = submit_many(emulator, [f"video {i}" for i in range(40)])
    triggers = [MidjourneyTaskTrigger(i, midjourney_conn_id=conn_id, poll_interval=0.3) for i in ids]

    with caplog.at_level(logging.WARNING, logger=polling.__name__):
        events = await run_all(triggers)

    assert {e["status"] for e in events} == {"success"}
    lists = emulator.requests_to("list")
    assert {r.status for r in lists if len(r.json["ids"]) > 10} == {400}
    accepted = [r for r in lists if r.status == 200]
    assert accepted
    assert all(len(r.json["ids"]) <= 10 for r in accepted)
    last_rejected = max(r.time for r in lists if r.status == 400)
    assert all(r.status == 200 for r in lists if r.time > last_rejected)  # learnt once, not every tick
    assert not any(FALLBACK_LOG in r.getMessage() for r in caplog.records)


async def test_transient_list_faults_are_retried_and_never_become_events(emulator, monkeypatch):
    conn_id = use_connection(monkeypatch, emulator)
    emulator.config.faults.retry_after = 0.05
    emulator.config.fail_next = [("list", "500"), ("list", "429")]
    ids = submit_many(emulator, [f"video {i}" for i in range(8)])

    events = await run_all([MidjourneyTaskTrigger(i, midjourney_conn_id=conn_id, poll_interval=0.2) for i in ids])

    assert {e["status"] for e in events} == {"success"}
    assert emulator.counters["faults"] == {"500": 1, "429": 1}
    assert [r.fault for r in emulator.requests_to("list")[:2]] == ["500", "429"]


async def test_a_refused_key_is_an_error_event_for_every_wait_and_no_fallback(emulator, monkeypatch, caplog):
    monkeypatch.setenv(
        f"AIRFLOW_CONN_{CONN_ID.upper()}",
        json.dumps({"conn_type": "midjourney", "host": emulator.url, "password": "not-the-key"}),
    )
    triggers = [
        MidjourneyTaskTrigger(f"1796000000000000{n}", midjourney_conn_id=CONN_ID, poll_interval=0.2) for n in (1, 3, 5)
    ]

    with caplog.at_level(logging.WARNING, logger=polling.__name__):
        events = await run_all(triggers)

    assert [e["status"] for e in events] == ["error"] * 3
    assert all("HTTP 401" in e["message"] for e in events)
    assert 1 <= emulator.count("list") + emulator.count("fetch") <= 3  # no retries, no fallback fetches
    assert not any(FALLBACK_LOG in r.getMessage() for r in caplog.records)


async def test_many_deadlines_each_end_with_a_timeout_carrying_the_last_seen_task(emulator, monkeypatch):
    conn_id = use_connection(monkeypatch, emulator)
    ids = submit_many(emulator, [f"video {i} [stuck]" for i in range(10)])
    end_time = time.time() + 1.2
    triggers = [MidjourneyTaskTrigger(i, midjourney_conn_id=conn_id, poll_interval=5.0, end_time=end_time) for i in ids]

    events = await run_all(triggers)

    assert [e["status"] for e in events] == ["timeout"] * 10
    assert [e["task"]["id"] for e in events] == ids
    assert {e["task"]["status"] for e in events} == {"IN_PROGRESS"}
    # The first tick (late joiners ride the next one), then one request for all ten deadlines.
    assert 2 <= emulator.count("list") + emulator.count("fetch") <= 3
    assert all(len(r.json["ids"]) == 10 for r in emulator.requests_to("list")[-1:])


# ------------------------------------------------------------------------------------------ modes and loops


async def test_batch_polling_off_fetches_each_task_and_lists_nothing(emulator, monkeypatch):
    conn_id = use_connection(monkeypatch, emulator, batch_polling=False)
    ids = submit_many(emulator, ["a fox", "an owl", "a hare"])

    events = await run_all([MidjourneyTaskTrigger(i, midjourney_conn_id=conn_id, poll_interval=0.2) for i in ids])

    assert {e["status"] for e in events} == {"success"}
    assert emulator.count("list") == 0
    assert {r.path.split("/")[-2] for r in emulator.requests_to("fetch")} == set(ids)
    assert emulator.count("fetch") >= 2 * len(ids)
    assert active_pollers() == []


async def test_a_single_wait_succeeds_with_plain_fetches(emulator, monkeypatch):
    conn_id = use_connection(monkeypatch, emulator)
    (task_id,) = submit_many(emulator, ["a paper boat"])

    (event,) = await run_all([MidjourneyTaskTrigger(task_id, midjourney_conn_id=conn_id, poll_interval=0.2)])

    assert event["status"] == "success"
    assert event["task"]["video_urls"] == [f"{emulator.root_url}/media/{task_id}/{n}.mp4" for n in range(4)]
    assert emulator.count("list") == 0  # one id per tick: a fetch is the cheapest request
    assert emulator.count("fetch") >= 2


def test_every_event_loop_gets_its_own_poller_and_nothing_outlives_it(emulator, monkeypatch):
    conn_id = use_connection(monkeypatch, emulator)
    seen: list[polling.SharedTaskPoller] = []

    async def one_run() -> list[dict[str, Any]]:
        ids = await asyncio.to_thread(submit_many, emulator, ["a fox", "an owl"])
        runs = [
            asyncio.ensure_future(first_event(MidjourneyTaskTrigger(i, midjourney_conn_id=conn_id, poll_interval=0.2)))
            for i in ids
        ]
        await wait_until(lambda: bool(active_pollers(asyncio.get_running_loop())))
        seen.extend(active_pollers(asyncio.get_running_loop()))
        return await asyncio.wait_for(asyncio.gather(*runs), RUN_LIMIT)

    first = asyncio.run(one_run())  # as dag.test() does: each trigger run in a fresh loop
    assert active_pollers() == []
    assert len(polling._registry) == 0
    second = asyncio.run(one_run())

    assert {e["status"] for e in [*first, *second]} == {"success"}
    assert len(seen) == 2
    assert seen[0] is not seen[1]
    assert all(poller.closed for poller in seen)
    assert active_pollers() == []
    assert len(polling._registry) == 0


def test_serialize_is_unchanged_by_batching(emulator, monkeypatch):
    use_connection(monkeypatch, emulator, batch_polling=True, list_chunk_size=7)
    trigger = MidjourneyTaskTrigger("17960000000000001", midjourney_conn_id=CONN_ID, poll_interval=3.0)

    _, kwargs = trigger.serialize()

    assert set(kwargs) == {
        "mj_task_id",
        "midjourney_conn_id",
        "poll_interval",
        "end_time",
        "started_at",
        "not_found_grace",
        "missing_urls_grace",
        "cancel_on_kill",
        "hook_params",
        "expect",
    }


# ------------------------------------------------------------------------------------------ rejections (fake API)


def _task(task_id: str) -> MidjourneyTask:
    return MidjourneyTask.from_api(
        {"id": task_id, "status": "SUCCESS", "progress": "100%", "videoUrls": [f"https://cdn.example/{task_id}.mp4"]}
    )


class FakeApi:
    """list_tasks/find_task over a dict of tasks; ``list_error(ids)`` may return an error to raise."""

    def __init__(self, ids: list[str], list_error: Callable[[list[str]], MidjourneyError | None]) -> None:
        self.tasks = {i: _task(i) for i in ids}
        self.list_error = list_error
        self.calls: list[tuple[str, Any]] = []

    async def list_tasks(self, ids: list[str]) -> list[MidjourneyTask]:
        self.calls.append(("list", list(ids)))
        error = self.list_error(ids)
        if error is not None:
            raise error
        return [self.tasks[i] for i in ids if i in self.tasks]

    async def find_task(self, task_id: str) -> MidjourneyTask | None:
        self.calls.append(("fetch", task_id))
        return self.tasks.get(task_id)


class FakeHook:
    list_chunk_size = None

    def __init__(self, api: FakeApi, chunk: int) -> None:
        self._api = api
        self.settings = ConnectionSettings(
            conn_id="fake", base_url="http://fake.invalid", api_key="k", list_chunk_size=chunk
        )

    async def load_settings(self) -> ConnectionSettings:
        return self.settings

    @asynccontextmanager
    async def api(self) -> AsyncIterator[FakeApi]:
        yield self._api


async def observe_each_once(hook: FakeHook, ids: list[str], rounds: int = 2) -> dict[str, list[Any]]:
    seen: dict[str, list[Any]] = {i: [] for i in ids}

    async def watch(task_id: str) -> None:
        async with subscribe(hook, task_id, poll_interval=0.05) as sub:  # type: ignore[arg-type]
            for _ in range(rounds):
                seen[task_id].append(await sub.next())

    await asyncio.wait_for(asyncio.gather(*(watch(i) for i in ids)), RUN_LIMIT)
    return seen


@pytest.mark.parametrize(
    "error",
    [
        MidjourneyRejectedError("The server rejected list of tasks", http_status=405),
        MidjourneyNotFoundError("Not found: list of tasks", http_status=404),
        MidjourneyRejectedError(
            "The server rejected list of tasks", http_status=400, description="route not supported"
        ),
        MidjourneyResponseError("Expected a JSON array from list of tasks, got <html>", http_status=200),
    ],
    ids=["405", "404", "gateway-400-at-every-size", "web-page-200"],
)
async def test_a_rejected_list_route_falls_back_to_fetches_logged_once(caplog, error):
    ids = [f"1796000000000{n:04d}" for n in range(1, 17, 2)]
    api = FakeApi(ids, lambda chunk: error)
    hook = FakeHook(api, chunk=8)

    with caplog.at_level(logging.WARNING, logger=polling.__name__):
        seen = await observe_each_once(hook, ids)

    for task_id in ids:
        assert [t.id for t in seen[task_id]] == [task_id, task_id]
    lists = [ids for kind, ids in api.calls if kind == "list"]
    assert lists  # it tried...
    if error.http_status == 400:
        assert sorted(lists[0]) == sorted(ids)
        assert {len(chunk) for chunk in lists} == {8, 4, 2}  # ...halving down to two ids
    else:
        assert [sorted(chunk) for chunk in lists] == [sorted(ids)]  # ...once
    first_fetch = next(n for n, (kind, _) in enumerate(api.calls) if kind == "fetch")
    assert all(kind == "fetch" for kind, _ in api.calls[first_fetch:])  # and never listed again
    assert sum(FALLBACK_LOG in r.getMessage() for r in caplog.records) == 1
    assert active_pollers() == []


async def test_observations_are_delivered_per_subscriber_and_errors_reach_only_their_chunk():
    ids = [f"1796000000000{n:04d}" for n in range(1, 9, 2)]
    boom = MidjourneyError("Server error on list of 2 task(s)", http_status=502)
    api = FakeApi(ids, lambda chunk: boom if ids[0] in chunk else None)
    hook = FakeHook(api, chunk=2)

    seen = await observe_each_once(hook, ids, rounds=1)

    assert seen[ids[0]] == [boom]
    assert seen[ids[1]] == [boom]
    assert [t.id for t in seen[ids[2]]] == [ids[2]]
    assert [t.id for t in seen[ids[3]]] == [ids[3]]


# ------------------------------------------------------------------------------------------ connection extras


def test_connection_extras_for_polling_are_parsed_and_kept_out_of_headers():
    def settings(**extra: Any) -> ConnectionSettings:
        return ConnectionSettings.from_parts(
            conn_id="c", host="https://api.example.com", schema=None, port=None, password=SECRET_KEY, extra=extra
        )

    assert {"batch_polling", "list_chunk_size"} <= OWN_EXTRA_KEYS
    default = settings()
    assert default.batch_polling is True
    assert default.list_chunk_size == DEFAULT_LIST_CHUNK_SIZE == 100
    assert settings(batch_polling=False).batch_polling is False
    assert settings(batch_polling="false", list_chunk_size="25").batch_polling is False
    assert settings(list_chunk_size="25").list_chunk_size == 25
    assert settings(list_chunk_size=7.0).list_chunk_size == 7
    for bad in (
        {"batch_polling": "maybe"},
        {"list_chunk_size": 0},
        {"list_chunk_size": "x"},
        {"list_chunk_size": True},
    ):
        with pytest.raises(MidjourneyConfigurationError, match=next(iter(bad))):
            settings(**bad)
    assert SECRET_KEY not in repr(PollerKey.for_settings(default))
