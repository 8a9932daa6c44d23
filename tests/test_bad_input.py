"""Bad parameters through the operator, the sensor and the hook: a clear error naming the parameter, and no request.

Three stages are covered:

* parse time: constructing a ``SubmitVideoOperator`` / ``MidjourneyTaskSensor`` with a bad literal raises at once;
* call time: the hook's public methods reject bad arguments before sending anything;
* run time (``dag.test()``): templated values that render bad, and broken connections, fail the task before any
  request, permanently (the tasks have ``retries=1`` and must still end ``failed`` on their first try).

Every case checks the emulator's request log stays empty.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from typing import Any

import airflow
import pytest
from helpers import SECRET_KEY, connection_json
from helpers.dag_runs import task_instances, write_dag
from packaging.version import Version

from airflow_provider_mjvideo.exceptions import (
    MidjourneyConfigurationError,
    MidjourneyError,
    MidjourneyPermanentError,
    MidjourneyValidationError,
)
from airflow_provider_mjvideo.hooks.midjourney import MidjourneyHook
from airflow_provider_mjvideo.operators.video import SubmitVideoOperator
from airflow_provider_mjvideo.sensors.video import MidjourneyTaskSensor
from airflow_provider_mjvideo.testing import EmulatorConfig, MidjourneyEmulator

IMAGE = "https://cdn.example.com/first-frame.png"
PARENT = "17956238781270001"


def op(**kwargs: Any) -> Callable[[], Any]:
    """A factory constructing a SubmitVideoOperator with valid defaults overridden by ``kwargs``."""
    arguments: dict[str, Any] = {"task_id": "submit", "prompt": "a paper boat", "image": IMAGE, **kwargs}
    return lambda: SubmitVideoOperator(**arguments)


def extend(**kwargs: Any) -> Callable[[], Any]:
    """A factory constructing an extend (no image) with valid defaults overridden by ``kwargs``."""
    arguments: dict[str, Any] = {"action": "extend", "index": 0, "mj_task_id": PARENT, "image": None, **kwargs}
    return op(**arguments)


def sensor(**kwargs: Any) -> Callable[[], Any]:
    """A factory constructing a MidjourneyTaskSensor with valid defaults overridden by ``kwargs``."""
    arguments: dict[str, Any] = {"task_id": "wait", "mj_task_id": PARENT, **kwargs}
    return lambda: MidjourneyTaskSensor(**arguments)


# (id, parameter the message must name, factory that must raise MidjourneyValidationError at construction)
PARSE_TIME_CASES: list[tuple[str, str, Callable[[], Any]]] = [
    ("op-motion-medium", "motion", op(motion="medium")),
    ("op-motion-uppercase", "motion", op(motion="LOW")),
    ("op-image-relative-path", "image", op(image="frames/first-frame.png")),
    ("op-image-bad-data-uri", "image", op(image="data:image/png;base64,@@@not-base64@@@")),
    ("op-image-missing-for-new-video", "image", op(image=None)),
    ("op-prompt-empty", "prompt", op(prompt="")),
    ("op-prompt-whitespace", "prompt", op(prompt=" \t\n ")),
    ("op-action-shorten", "action", op(action="shorten")),
    ("op-extend-without-parent", "mj_task_id", extend(mj_task_id=None)),
    ("op-extend-without-index", "index", extend(index=None)),
    ("op-index-4", "index", extend(index=4)),
    ("op-index-minus-1", "index", extend(index=-1)),
    ("op-index-x", "index", extend(index="x")),
    ("op-index-bool", "index", extend(index=True)),
    ("op-parent-without-extend", "mj_task_id", op(mj_task_id=PARENT)),
    ("op-parent-float", "mj_task_id", extend(mj_task_id=1.7956238781270001e16)),
    ("op-state-300-chars", "state", op(state="s" * 300)),
    ("op-notify-hook-not-url", "notify_hook", op(notify_hook="callback-please")),
    ("op-notify-hook-ftp", "notify_hook", op(notify_hook="ftp://127.0.0.1/hook")),
    ("op-extra-body-overrides-prompt", "extra_body", op(extra_body={"prompt": "sneaky"})),
    ("op-extra-body-overrides-taskId", "extra_body", op(extra_body={"taskId": PARENT})),
    ("op-extra-body-batch-size-3", "extra_body", op(extra_body={"batchSize": 3})),
    ("op-poll-interval-zero", "poll_interval", op(poll_interval=0)),
    ("op-poll-interval-negative", "poll_interval", op(poll_interval=-1)),
    ("op-timeout-zero", "timeout", op(timeout=0)),
    ("op-timeout-negative", "timeout", op(timeout=-30)),
    ("sensor-poke-interval-zero", "poke_interval", sensor(poke_interval=0)),
    ("sensor-poke-interval-negative", "poke_interval", sensor(poke_interval=-0.5)),
    ("sensor-timeout-zero", "timeout", sensor(timeout=0)),
    ("sensor-timeout-negative", "timeout", sensor(timeout=-1)),
    ("sensor-id-none", "mj_task_id", sensor(mj_task_id=None)),
    ("sensor-id-empty", "mj_task_id", sensor(mj_task_id="")),
    ("sensor-id-slash", "mj_task_id", sensor(mj_task_id="1795/0001")),
    ("sensor-not-found-grace-zero", "not_found_grace", sensor(not_found_grace=0)),
]


@pytest.mark.parametrize(
    ("parameter", "factory"), [case[1:] for case in PARSE_TIME_CASES], ids=[case[0] for case in PARSE_TIME_CASES]
)
def test_bad_literal_fails_at_construction(emulator: MidjourneyEmulator, mj_conn: str, parameter, factory):
    with pytest.raises(MidjourneyValidationError) as info:
        factory()
    assert info.value.parameter == parameter
    assert repr(parameter) in str(info.value), str(info.value)
    assert isinstance(info.value, MidjourneyPermanentError)
    assert emulator.requests == []


def test_sensor_mode_typo_fails_at_construction(emulator: MidjourneyEmulator, mj_conn: str):
    """The sensor checks Airflow's own ``mode`` parameter itself: the same ValueError naming it on every Airflow."""
    with pytest.raises(ValueError, match="mode") as info:
        sensor(mode="pokee")()
    assert "pokee" in str(info.value)
    assert isinstance(info.value, MidjourneyValidationError)
    assert info.value.parameter == "mode"
    assert emulator.requests == []


def test_a_valid_literal_constructs(emulator: MidjourneyEmulator, mj_conn: str):
    """The factories themselves are sound: without the bad value, construction succeeds."""
    for factory in (op(), extend(), sensor(), op(state="s" * 255, notify_hook="http://127.0.0.1:1/hook")):
        factory()
    assert emulator.requests == []


# (id, parameter, call on a hook whose connection points at the running emulator)
HOOK_CASES: list[tuple[str, str, Callable[[MidjourneyHook], Any]]] = [
    ("get-task-none", "mj_task_id", lambda h: h.get_task(None)),
    ("find-task-float", "mj_task_id", lambda h: h.find_task(1.5)),
    ("find-task-query", "mj_task_id", lambda h: h.find_task("1795?x=1")),
    ("cancel-task-empty", "mj_task_id", lambda h: h.cancel_task("   ")),
    ("get-tasks-slash", "ids", lambda h: h.get_tasks([PARENT, "a/b"])),
    ("wait-timeout-negative", "timeout", lambda h: h.wait_for_task(PARENT, poll_interval=1, timeout=-1)),
    ("wait-poll-interval-text", "poll_interval", lambda h: h.wait_for_task(PARENT, poll_interval="soon")),
    ("submit-prompt-none", "prompt", lambda h: h.submit_video(None, IMAGE)),
    ("submit-motion-none", "motion", lambda h: h.submit_video("p", IMAGE, None)),
    ("submit-extra-body-task-id", "extra_body", lambda h: h.submit_video("p", IMAGE, extra_body={"task_id": "1"})),
    ("submit-extra-body-not-dict", "extra_body", lambda h: h.submit_video("p", IMAGE, extra_body=["loop"])),
    ("submit-extra-body-loop-text", "extra_body", lambda h: h.submit_video("p", IMAGE, extra_body={"loop": "yes"})),
    (
        "submit-extra-body-end-image",
        "extra_body.endImage",
        lambda h: h.submit_video("p", IMAGE, extra_body={"endImage": "ftp://x/y.png"}),
    ),
    ("submit-state-not-text", "state", lambda h: h.submit_video("p", IMAGE, state={"run": 1})),
]


@pytest.mark.parametrize(("parameter", "call"), [case[1:] for case in HOOK_CASES], ids=[case[0] for case in HOOK_CASES])
def test_bad_hook_argument_is_named_and_sends_nothing(emulator: MidjourneyEmulator, mj_conn: str, parameter, call):
    hook = MidjourneyHook(mj_conn, retry_delay=0.01)
    with pytest.raises(MidjourneyValidationError) as info:
        call(hook)
    assert info.value.parameter == parameter
    assert repr(parameter) in str(info.value), str(info.value)
    assert emulator.requests == []


@pytest.mark.parametrize(
    ("kwargs", "error", "parameter"),
    [
        ({"list_chunk_size": 0}, MidjourneyValidationError, "list_chunk_size"),
        ({"retry_limit": 0}, MidjourneyValidationError, "retry_limit"),
        ({"retry_delay": -1}, MidjourneyValidationError, "retry_delay"),
    ],
    ids=["list-chunk-size-zero", "retry-limit-zero", "retry-delay-negative"],
)
def test_bad_hook_construction(emulator: MidjourneyEmulator, mj_conn: str, kwargs, error, parameter):
    with pytest.raises(error) as info:
        MidjourneyHook(mj_conn, **kwargs)
    assert parameter in str(info.value)
    assert emulator.requests == []


def test_wait_for_task_on_a_broken_connection_keeps_the_configuration_error(emulator, monkeypatch):
    broken = {**json.loads(connection_json(emulator)), "extra": {"auth_style": "baerer"}}
    monkeypatch.setenv("AIRFLOW_CONN_MJ_AUTH_TYPO", json.dumps(broken))
    with pytest.raises(MidjourneyConfigurationError, match="auth_style 'baerer'"):
        MidjourneyHook("mj_auth_typo").wait_for_task(PARENT, poll_interval=0.1, timeout=5)
    assert emulator.requests == []


# ------------------------------------------------------------------------------------------ run time (dag.test)

RUN_DAG_ID = "mjvideo_bad_input"
RUN_DAG = '''
    """Tasks whose templated values render bad, or whose connection is broken: each must fail before any request."""

    from __future__ import annotations

    from datetime import timedelta

    import pendulum
    from airflow.sdk import DAG

    from airflow_provider_mjvideo.operators.video import SubmitVideoOperator
    from airflow_provider_mjvideo.sensors.video import MidjourneyTaskSensor

    #: task_id -> the exception the task failed with (filled by the failure callback, in this process).
    FAILURES = {}


    def record_failure(context):
        FAILURES[context["ti"].task_id] = context.get("exception")


    IMAGE = "https://cdn.example.com/first-frame.png"
    PARENT = "17956238781270001"

    with DAG(
        dag_id="mjvideo_bad_input",
        schedule=None,
        start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
        params={
            "motion": "medium",
            "image": "ftp://cdn.example.com/first-frame.png",
            "prompt": "   ",
            "action": "shorten",
            "index": "4",
            "state": "s" * 300,
            "notify_hook": "not a url",
            "bad_id": "1795/0001",
            "empty_id": "",
        },
        default_args={"retries": 1, "retry_delay": timedelta(0), "on_failure_callback": record_failure},
    ) as dag:
        SubmitVideoOperator(task_id="templated_motion", prompt="p", image=IMAGE, motion="{{ params.motion }}")
        SubmitVideoOperator(task_id="templated_image", prompt="p", image="{{ params.image }}")
        SubmitVideoOperator(task_id="templated_prompt", prompt="{{ params.prompt }}", image=IMAGE)
        SubmitVideoOperator(task_id="templated_action", prompt="p", image=IMAGE, action="{{ params.action }}")
        SubmitVideoOperator(
            task_id="templated_index", prompt="p", action="extend", mj_task_id=PARENT, index="{{ params.index }}"
        )
        SubmitVideoOperator(
            task_id="templated_parent", prompt="p", action="extend", mj_task_id="{{ params.bad_id }}", index=0
        )
        SubmitVideoOperator(task_id="templated_state", prompt="p", image=IMAGE, state="{{ params.state }}")
        SubmitVideoOperator(
            task_id="templated_notify_hook", prompt="p", image=IMAGE, notify_hook="{{ params.notify_hook }}"
        )
        MidjourneyTaskSensor(task_id="templated_sensor_slash", mj_task_id="{{ params.bad_id }}", poke_interval=0.2)
        MidjourneyTaskSensor(task_id="templated_sensor_empty", mj_task_id="{{ params.empty_id }}", poke_interval=0.2)
        for conn in ("mj_undefined", "mj_no_host", "mj_auth_typo", "mj_mode_typo"):
            SubmitVideoOperator(task_id=f"submit_{conn}", prompt="p", image=IMAGE, midjourney_conn_id=conn)
            MidjourneyTaskSensor(
                task_id=f"wait_{conn}", mj_task_id=PARENT, midjourney_conn_id=conn, poke_interval=0.2, timeout=5
            )
        MidjourneyTaskSensor(
            task_id="defer_mj_auth_typo",
            mj_task_id=PARENT,
            midjourney_conn_id="mj_auth_typo",
            poke_interval=0.2,
            timeout=5,
            deferrable=True,
        )
'''

# task_id -> (exception class, words the message must contain)
RUN_CASES: dict[str, tuple[type[MidjourneyError], tuple[str, ...]]] = {
    "templated_motion": (MidjourneyValidationError, ("'motion'", "medium")),
    # ftp:// is a storage URI: the run says which filesystem to install, before any request.
    "templated_image": (MidjourneyConfigurationError, ("'image'", "ftp://", "fsspec")),
    "templated_prompt": (MidjourneyValidationError, ("'prompt'",)),
    "templated_action": (MidjourneyValidationError, ("'action'", "shorten")),
    "templated_index": (MidjourneyValidationError, ("'index'", "4")),
    "templated_parent": (MidjourneyValidationError, ("'mj_task_id'", "1795/0001")),
    "templated_state": (MidjourneyValidationError, ("'state'", "300")),
    "templated_notify_hook": (MidjourneyValidationError, ("'notify_hook'",)),
    "templated_sensor_slash": (MidjourneyValidationError, ("'mj_task_id'", "1795/0001")),
    "templated_sensor_empty": (MidjourneyValidationError, ("'mj_task_id'",)),
}
_CONN_WORDS = {
    "mj_undefined": ("mj_undefined", "AIRFLOW_CONN_MJ_UNDEFINED"),
    "mj_no_host": ("mj_no_host", "no host"),
    "mj_auth_typo": ("mj_auth_typo", "auth_style", "baerer"),
    "mj_mode_typo": ("mj_mode_typo", "mode", "fsat"),
}
for _conn, _words in _CONN_WORDS.items():
    for _prefix in ("submit", "wait"):
        RUN_CASES[f"{_prefix}_{_conn}"] = (MidjourneyConfigurationError, _words)
RUN_CASES["defer_mj_auth_typo"] = RUN_CASES["wait_mj_auth_typo"]


#: Airflow 3.0.0-3.0.2 call on_failure_callback without "exception" in the context (apache/airflow#52055, in 3.0.3).
CALLBACKS_GET_THE_EXCEPTION = Version(airflow.__version__).release >= (3, 0, 3)


@contextmanager
def failure_listener() -> Iterator[dict[str, BaseException]]:
    """
    Record each failed task's exception, ``task_id -> exception``, from the ``on_task_instance_failed`` listener
    hook of Airflow 3.0's listener manager, for the duration of the block.
    """
    from airflow.listeners import hookimpl
    from airflow.listeners.listener import get_listener_manager

    errors: dict[str, BaseException] = {}

    class TaskFailureListener:
        @hookimpl
        def on_task_instance_failed(self, previous_state: Any, task_instance: Any, error: Any) -> None:
            if isinstance(error, BaseException):
                errors[task_instance.task_id] = error

    listener = TaskFailureListener()
    manager = get_listener_manager()
    manager.add_listener(listener)
    try:
        yield errors
    finally:
        manager.pm.unregister(listener)


@pytest.fixture(scope="module")
def bad_run(airflow_db, tmp_path_factory) -> Iterator[dict[str, Any]]:
    """Run the DAG of bad tasks once with dag.test(); yield its task instances, recorded failures and requests."""
    with (
        MidjourneyEmulator(EmulatorConfig(api_key=SECRET_KEY, video_duration=0.5)) as emu,
        pytest.MonkeyPatch.context() as mp,
        nullcontext(None) if CALLBACKS_GET_THE_EXCEPTION else failure_listener() as listened,
    ):
        base = json.loads(connection_json(emu))
        mp.setenv("AIRFLOW_CONN_MIDJOURNEY_DEFAULT", json.dumps(base))
        mp.delenv("AIRFLOW_CONN_MJ_UNDEFINED", raising=False)
        mp.setenv("AIRFLOW_CONN_MJ_NO_HOST", json.dumps({**base, "host": ""}))
        mp.setenv("AIRFLOW_CONN_MJ_AUTH_TYPO", json.dumps({**base, "extra": {"auth_style": "baerer"}}))
        mp.setenv("AIRFLOW_CONN_MJ_MODE_TYPO", json.dumps({**base, "extra": {"auth_style": "bearer", "mode": "fsat"}}))
        module = write_dag(tmp_path_factory.mktemp("bad_input_dags"), mp, "mjvideo_bad_input.py", RUN_DAG)
        dag_run = module.dag.test()
        failures = dict(module.FAILURES)  # task_id -> exception, one entry per on_failure_callback call
        if listened is not None:
            # The callbacks ran (the keys) but saw no exception: take it from the listener hook instead.
            assert set(failures.values()) == {None}, failures
            failures = {task_id: listened.get(task_id) for task_id in failures}
        yield {
            "state": dag_run.state,
            "tis": task_instances(RUN_DAG_ID, dag_run.run_id),
            "failures": failures,
            "requests": emu.requests,
            "task_ids": set(module.dag.task_ids),
        }


def test_the_bad_run_covers_every_task(bad_run):
    assert bad_run["task_ids"] == set(RUN_CASES)
    assert str(bad_run["state"]) == "failed"
    assert bad_run["requests"] == [], [(r.method, r.path) for r in bad_run["requests"]]


@pytest.mark.parametrize(
    "task_id",
    [task_id for task_id in RUN_CASES],
)
def test_bad_value_at_run_time_fails_permanently_before_any_request(bad_run, task_id):
    error_type, words = RUN_CASES[task_id]
    ti = bad_run["tis"][(task_id, -1)]
    error = bad_run["failures"].get(task_id)
    assert error is not None, f"{task_id} did not fail (state {ti.state})"
    message = str(error)
    for word in words:
        assert word in message, message
    assert SECRET_KEY not in message
    assert isinstance(error, error_type), f"{type(error).__name__}: {message}"
    # retries=1 and retry_delay=0: a permanent error ends the task on its first try.
    assert str(ti.state) == "failed"
    assert ti.try_number == 1
