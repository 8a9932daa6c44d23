"""The API key never leaves the connection: not in logs, XComs, rendered fields, trigger kwargs, errors or callbacks.

Every example DAG runs with ``dag.test()`` against the emulator with the recognisable ``SECRET_KEY``; then everything
the run left behind is scanned: captured logging and stdout/stderr, task log files, XCom rows, rendered template
fields, the serialized kwargs of every trigger deferred to, the ``trigger`` table, the asset events' extras, the
emulator's notifyHook payloads and request bodies. Error paths are forced separately: a key the server rejects, and
servers that echo the key back in an error body.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pendulum
import pytest
from airflow.providers.common.compat.version_compat import AIRFLOW_V_3_1_PLUS
from helpers import REPO, SECRET_KEY
from helpers.dag_runs import (
    asset_events,
    load_dag_file,
    rendered_fields,
    sync_dag_to_db,
    task_instances,
    trigger_rows,
    write_dag,
    xcoms,
)
from helpers.scripted_http import Answer, ScriptedServer

from airflow_provider_mjvideo.exceptions import (
    MidjourneyAuthError,
    MidjourneyError,
    MidjourneyRejectedError,
    MidjourneyServerError,
    MidjourneySubmitOutcomeUnknownError,
    MidjourneyTaskFailedError,
)
from airflow_provider_mjvideo.hooks.midjourney import MidjourneyHook
from airflow_provider_mjvideo.testing import MidjourneyEmulator
from airflow_provider_mjvideo.triggers.video import MidjourneyTaskTrigger

IMAGE = "https://cdn.example.com/first-frame.png"
TASK_ID = "17956238781270001"
#: The whole key, and its distinctive tail (a partial leak, e.g. a key cut by a length limit, counts too).
NEEDLES = (SECRET_KEY, SECRET_KEY[-12:])


def as_text(value: Any) -> str:
    """Everything in ``value`` as text: strings, bytes, log records, exceptions, nested containers, objects."""
    if isinstance(value, str):
        return value
    if isinstance(value, (bytes, bytearray)):
        return bytes(value).decode("utf-8", errors="replace")
    if isinstance(value, logging.LogRecord):
        return "\n".join((value.getMessage(), repr(value.args), value.exc_text or "", repr(value.__dict__)))
    if isinstance(value, BaseException):
        return f"{value}\n{value!r}\n{as_text(value.args)}"
    if isinstance(value, Mapping):
        return "\n".join(f"{as_text(key)}: {as_text(item)}" for key, item in value.items())
    if isinstance(value, (list, tuple, set, frozenset)):
        return "\n".join(as_text(item) for item in value)
    return repr(value)


def leaks(**sources: Any) -> dict[str, str]:
    """The sources whose text contains the key (or its tail), each with the offending line."""
    found = {}
    for name, value in sources.items():
        for line in as_text(value).splitlines():
            if any(needle in line for needle in NEEDLES):
                found[name] = line[:300]
                break
    return found


def test_the_scanner_finds_a_planted_key(caplog, capfd):
    """The checks below can fail: the scanner finds the key wherever it is planted."""
    caplog.set_level(logging.DEBUG)
    # A logger of the test's own: Airflow's handlers (on 3.0, some left half-closed by earlier dag.test()
    # runs) would echo the planted record to stderr, which the last line checks is clean.
    logging.getLogger("mjvideo.tests.planted").warning("connecting with %s", SECRET_KEY)
    print(f"Authorization: Bearer {SECRET_KEY}")
    out, err = capfd.readouterr()
    planted = {
        "string": f"the key is {SECRET_KEY}.",
        "tail": f"...{SECRET_KEY[-12:]}",
        "bytes": b'{"auth": "' + SECRET_KEY.encode() + b'"}',
        "nested": {"a": [1, {"b": (None, SECRET_KEY)}]},
        "record": caplog.records,
        "caplog": caplog.text,
        "stdout": out,
        "error": RuntimeError(f"bad key {SECRET_KEY}"),
        "object": type("Holder", (), {"__repr__": lambda self: f"Holder({SECRET_KEY})"})(),
    }
    assert set(leaks(**planted)) == set(planted)
    assert leaks(clean=["nothing here", {"key": "***"}], err=err) == {}


# ------------------------------------------------------------------------------------------ the example DAGs


@pytest.fixture
def serialized_triggers(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, dict[str, Any]]]:
    """Record what ``MidjourneyTaskTrigger.serialize()`` returns, for each deferral of the run."""
    recorded: list[tuple[str, dict[str, Any]]] = []
    original = MidjourneyTaskTrigger.serialize

    def spy(self: MidjourneyTaskTrigger) -> tuple[str, dict[str, Any]]:
        result = original(self)
        recorded.append(result)
        return result

    monkeypatch.setattr(MidjourneyTaskTrigger, "serialize", spy)
    return recorded


def _task_log_files() -> dict[str, str]:
    logs = Path(os.environ["AIRFLOW_HOME"]) / "logs"
    if not logs.is_dir():
        return {}
    return {str(path): path.read_text(errors="replace") for path in logs.rglob("*") if path.is_file()}


def _everything_the_run_left(
    dag_id: str, run_id: str, emu: MidjourneyEmulator, caplog, capfd, triggers: list
) -> dict[str, Any]:
    out, err = capfd.readouterr()
    return {
        "logging": caplog.records,
        "logging_text": caplog.text,
        "stdout": out,
        "stderr": err,
        "task_log_files": _task_log_files(),
        "xcom": xcoms(dag_id, run_id),
        "xcom_raw": xcoms(dag_id, run_id, raw=True),
        "rendered_fields": rendered_fields(dag_id, run_id),
        "serialized_triggers": triggers,
        "trigger_table": trigger_rows(),
        "asset_event_extras": [event.extra for event in asset_events(dag_id, run_id)],
        "notifications": emu.notifications,
        "request_bodies": [request.body for request in emu.requests],
    }


EXAMPLES = {"mjvideo_chain": 3, "mjvideo_daily": 1, "mjvideo_fanout": 3}
#: Seconds a video takes where a run must defer: longer than dag.test() takes to start the next task, so that a
#: deferrable wait still finds its video unfinished at its first poke. Airflow 3.0's in-process task runner takes
#: about 1-1.5 s per task start on the 2-core CI machine (3.3: about 0.2 s).
DEFERRING_VIDEO_SECONDS = 1.0 if AIRFLOW_V_3_1_PLUS else 4.0


@pytest.mark.parametrize("dag_id", list(EXAMPLES))
def test_example_dag_run_leaves_the_key_nowhere(
    airflow_db, emulator, mj_conn, monkeypatch, tmp_path, caplog, capfd, serialized_triggers, dag_id
):
    import airflow.settings

    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="airflow")
    monkeypatch.setenv("MJVIDEO_POLL_INTERVAL", "0.2")
    monkeypatch.setattr(airflow.settings, "DAGS_FOLDER", str(REPO / "example_dags"))
    dag = load_dag_file(REPO / "example_dags" / f"{dag_id}.py").dag
    assert dag.dag_id == dag_id

    # A DAG that saves its clips gets a folder of this test's own; what it writes there is scanned too.
    run_conf = {"destination": (tmp_path / "clips").as_uri()} if "destination" in dag.params else None
    if dag_id == "mjvideo_chain":
        emulator.config.video_duration = DEFERRING_VIDEO_SECONDS

    # Synced first, as the dag-processor does: Airflow 3.0's dag.test() refuses outlets on assets it never saw.
    sync_dag_to_db(dag, REPO / "example_dags")
    # A logical date as newer Airflow's dag.test() gives by default (3.0's leaves it None: no {{ ds }} for the daily).
    dag_run = dag.test(run_conf=run_conf, logical_date=pendulum.now("UTC"))

    states = {key: str(ti.state) for key, ti in task_instances(dag_id, dag_run.run_id).items()}
    assert str(dag_run.state) == "success", states
    assert emulator.counters["submit_accepted"] == EXAMPLES[dag_id]
    left = _everything_the_run_left(dag_id, dag_run.run_id, emulator, caplog, capfd, serialized_triggers)
    left["saved_text_files"] = [
        path.read_text(errors="replace") for path in tmp_path.rglob("*") if path.suffix in (".json", ".html", ".txt")
    ]
    # What is scanned is really there (an empty source would pass vacuously).
    assert left["stderr"] or left["stdout"] or left["logging"]
    returned = [value for (_task, _index, key), value in left["xcom_raw"].items() if key == "return_value"]
    assert set(emulator.tasks) <= {value for value in returned if isinstance(value, str)}  # a task id per submit
    summaries = [value for value in returned if isinstance(value, dict) and value.get("status") == "SUCCESS"]
    assert len(summaries) >= EXAMPLES[dag_id]  # a summary per wait
    assert left["rendered_fields"]
    api_requests = [request for request in emulator.requests if request.route != "media"]
    assert all(request.headers.get("authorization") == f"Bearer {SECRET_KEY}" for request in api_requests)
    if run_conf:
        assert left["saved_text_files"], "the DAG saved clips but wrote no manifest"
    if dag_id == "mjvideo_chain":
        assert serialized_triggers, "the chain's deferrable waits should have deferred at least once"
        assert len(left["asset_event_extras"]) == 3  # one per download, each with its clips
    assert leaks(**left) == {}


NOTIFY_DAG_ID = "mjvideo_secrets_notify"
NOTIFY_DAG = '''
    """A video and an extend of it, both with a notifyHook on the emulator; waits deferred to the trigger."""

    from __future__ import annotations

    import os

    import pendulum
    from airflow.sdk import DAG

    from airflow_provider_mjvideo.operators.video import SubmitVideoOperator
    from airflow_provider_mjvideo.sensors.video import MidjourneyTaskSensor

    with DAG(
        dag_id="mjvideo_secrets_notify",
        schedule=None,
        start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
        params={"notify_hook": os.environ["MJVIDEO_TEST_NOTIFY_HOOK"]},
    ) as dag:
        generate = SubmitVideoOperator(
            task_id="generate",
            prompt="a lighthouse in a storm",
            image="https://cdn.example.com/lighthouse.png",
            notify_hook=os.environ["MJVIDEO_TEST_NOTIFY_HOOK"],
            wait_for_completion=True,
            deferrable=True,
            poll_interval=0.2,
        )
        extend = SubmitVideoOperator(
            task_id="extend",
            action="extend",
            index=1,
            mj_task_id=generate.output,
            prompt="the storm clears",
            notify_hook="{{ params.notify_hook }}",
        )
        wait = MidjourneyTaskSensor(task_id="wait", mj_task_id=extend.output, deferrable=True, poke_interval=0.2)
        generate >> extend >> wait
'''


def _finished_notifications(emu: MidjourneyEmulator) -> int:
    return len({payload["id"] for _url, payload in emu.notifications if payload["status"] == "SUCCESS"})


def test_notify_hook_run_leaves_the_key_nowhere(
    airflow_db, emulator, mj_conn, monkeypatch, tmp_path, caplog, capfd, serialized_triggers
):
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="airflow")
    notify_hook = f"{emulator.root_url}/notify/receiver"
    monkeypatch.setenv("MJVIDEO_TEST_NOTIFY_HOOK", notify_hook)
    emulator.config.video_duration = DEFERRING_VIDEO_SECONDS  # long enough for the waits to defer
    module = write_dag(tmp_path / "dags", monkeypatch, "mjvideo_secrets_notify.py", NOTIFY_DAG)

    dag_run = module.dag.test()

    states = {key: str(ti.state) for key, ti in task_instances(NOTIFY_DAG_ID, dag_run.run_id).items()}
    assert str(dag_run.state) == "success", states
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and _finished_notifications(emulator) < 2:
        time.sleep(0.1)
    notifications = emulator.notifications
    assert {url for url, _payload in notifications} == {notify_hook}
    assert {payload["status"] for _url, payload in notifications} >= {"SUCCESS"}
    assert len({payload["id"] for _url, payload in notifications}) == 2
    assert len(serialized_triggers) >= 2
    left = _everything_the_run_left(NOTIFY_DAG_ID, dag_run.run_id, emulator, caplog, capfd, serialized_triggers)
    assert left["notifications"]
    assert ("generate", -1, "mj_task") in left["xcom"]
    assert leaks(**left) == {}


# ------------------------------------------------------------------------------------------ error paths


def _errors_from(calls: dict[str, Any]) -> dict[str, BaseException]:
    errors = {}
    for name, call in calls.items():
        try:
            call()
        except MidjourneyError as err:
            errors[name] = err
    return errors


def test_a_rejected_key_leaves_the_key_nowhere(emulator, monkeypatch, caplog, capfd):
    caplog.set_level(logging.DEBUG)
    emulator.config.api_key = "the-server-wants-another-key"
    connection = {"conn_type": "midjourney", "host": emulator.url, "password": SECRET_KEY}
    monkeypatch.setenv("AIRFLOW_CONN_MJ_REJECTED", json.dumps(connection))
    hook = MidjourneyHook("mj_rejected", retry_delay=0.01)
    errors = _errors_from(
        {
            "submit": lambda: hook.submit_video("a paper boat", IMAGE),
            "get_task": lambda: hook.get_task(TASK_ID),
            "get_tasks": lambda: hook.get_tasks([TASK_ID]),
            "cancel": lambda: hook.cancel_task(TASK_ID),
        }
    )
    assert set(errors) == {"submit", "get_task", "get_tasks", "cancel"}
    assert all(isinstance(err, MidjourneyAuthError) for err in errors.values()), errors
    ok, message = hook.test_connection()
    assert not ok
    assert message.startswith("Authentication failed")
    event = asyncio.run(_first_event(MidjourneyTaskTrigger(TASK_ID, "mj_rejected", poll_interval=0.05)))
    assert event["status"] == "error"
    assert "Authentication failed" in event["message"]
    out, err = capfd.readouterr()
    sources = {"errors": errors, "test_connection": message, "event": event, "logging": caplog.records}
    assert leaks(**sources, stdout=out, stderr=err, settings=repr(hook.settings), auth=repr(hook.get_conn().auth)) == {}


async def _first_event(trigger: MidjourneyTaskTrigger) -> dict[str, Any]:
    async for event in trigger.run():
        return event.payload
    raise AssertionError("the trigger ended without an event")


def _echo(status: int, shape: str) -> Any:
    """An answer that echoes the request's Authorization header back in the body, as careless servers do."""

    def answer(headers: dict[str, str]) -> Answer:
        sent = headers.get("authorization", "")
        if shape == "trueai":
            body = {"success": False, "code": -1, "message": f"Invalid key {sent}"}
        elif shape == "task":
            body = {"id": TASK_ID, "status": "FAILURE", "failReason": f"upstream refused {sent}", "progress": ""}
        else:
            body = {"code": 9, "description": f"upstream refused the header Authorization: {sent}"}
        return Answer(status, json.dumps(body).encode())

    return answer


@pytest.fixture
def echo_server(monkeypatch: pytest.MonkeyPatch) -> Iterator[ScriptedServer]:
    server = ScriptedServer().start()
    connection = {"conn_type": "midjourney", "host": server.url, "password": SECRET_KEY, "extra": {"timeout": 5}}
    monkeypatch.setenv("AIRFLOW_CONN_MJ_ECHO", json.dumps(connection))
    try:
        yield server
    finally:
        server.stop()


#: What the server said, as the error keeps it: its words with the key masked (the header's scheme stays).
SAID_BY_CODE = "description: 'upstream refused the header Authorization: Bearer ***'"
SAID_BY_TRUEAI = "description: 'Invalid key Bearer ***'"
SAID_AS_FAIL_REASON = "ended FAILURE: upstream refused Bearer ***"


@pytest.mark.parametrize(
    ("status", "shape", "call", "error", "said"),
    [
        (500, "code", "get_task", MidjourneyServerError, SAID_BY_CODE),
        (500, "code", "submit", MidjourneySubmitOutcomeUnknownError, SAID_BY_CODE),
        (401, "code", "get_task", MidjourneyAuthError, SAID_BY_CODE),
        (400, "code", "submit", MidjourneyRejectedError, SAID_BY_CODE),
        (200, "trueai", "submit", MidjourneyRejectedError, SAID_BY_TRUEAI),
        (200, "task", "wait", MidjourneyTaskFailedError, SAID_AS_FAIL_REASON),
        (401, "code", "trigger", None, SAID_BY_CODE),
    ],
    ids=["500-fetch", "500-submit", "401-fetch", "400-submit", "trueai-200-submit", "failure-reason", "401-trigger"],
)
def test_a_server_echoing_the_key_does_not_make_it_leak(echo_server, caplog, capfd, status, shape, call, error, said):
    caplog.set_level(logging.DEBUG)
    echo_server.answer = _echo(status, shape)
    hook = MidjourneyHook("mj_echo", retry_limit=2, retry_delay=0.01)
    calls = {
        "get_task": lambda: hook.get_task(TASK_ID),
        "submit": lambda: hook.submit_video("a paper boat", IMAGE),
        "wait": lambda: hook.wait_for_task(TASK_ID, poll_interval=0.05, timeout=5),
    }
    sources: dict[str, Any] = {}
    if call == "trigger":
        trigger = MidjourneyTaskTrigger(TASK_ID, "mj_echo", poll_interval=0.05)
        sources["event"] = asyncio.run(_first_event(trigger))
        assert sources["event"]["status"] == "error"
        message = sources["event"]["message"]
    else:
        with pytest.raises(error) as info:
            calls[call]()
        assert type(info.value) is error
        sources["error"] = info.value
        message = str(info.value)
    # The server's words are kept, minus the key; an HTTP error also names its status (a failed task has none).
    assert said in message
    assert (f"(HTTP {status}, " in message) is (call != "wait")
    assert echo_server.requests
    out, err = capfd.readouterr()
    assert leaks(**sources, logging=caplog.records, stdout=out, stderr=err) == {}
