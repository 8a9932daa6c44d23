"""
Never pay twice, never leave a video running: resumable submissions and cancellation.

Retries run for real in ``dag.test()`` (Airflow 3.3's ``task_state_store`` survives them); a "crash"
is an exception raised by a test subclass after the id was stored, which is what a lost worker looks
like to the next try. Cancellation is checked in the emulator's request log.
"""

from __future__ import annotations

import datetime
from typing import Any

import pendulum
import pytest
from airflow.providers.common.compat.version_compat import AIRFLOW_V_3_3_PLUS
from airflow.sdk import DAG
from helpers.dag_runs import task_states, xcom_value

from airflow_provider_mjvideo.operators.video import (
    STORED_TASK_ID_KEY,
    TASK_SUMMARY_XCOM_KEY,
    SubmitVideoOperator,
)
from airflow_provider_mjvideo.sensors.video import MidjourneyTaskSensor
from airflow_provider_mjvideo.testing import MidjourneyEmulator

IMAGE = "https://cdn.example.com/frames/boat.png"
NO_DELAY = datetime.timedelta(seconds=0)
#: What the first try does after its submission was stored, before it "crashes".
CRASH_HOOKS: dict[str, Any] = {}


class _CrashAfterSubmit(SubmitVideoOperator):
    """Raises on the first try once the submitted id is in ``task_state_store`` (a lost worker)."""

    def poll_until_complete(self, external_id: Any, context: Any) -> str:  # type: ignore[override]
        if context["ti"].try_number == 1:
            CRASH_HOOKS.get(self.task_id, lambda _id: None)(str(external_id))
            raise RuntimeError(f"worker lost after submitting {external_id}")
        return super().poll_until_complete(external_id, context)


class _CrashAfterWait(SubmitVideoOperator):
    """Raises on the first try after the video finished (the result was never reported)."""

    def get_job_result(self, external_id: Any, context: Any) -> str:
        if context["ti"].try_number == 1:
            raise RuntimeError(f"worker lost after {external_id} finished")
        return super().get_job_result(external_id, context)


def _dag(dag_id: str) -> DAG:
    return DAG(dag_id, schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC"), catchup=False)


def _submitted_ids(emu: MidjourneyEmulator) -> list[str]:
    return sorted(emu.tasks, key=lambda task_id: emu.tasks[task_id]["submit_mono"])


def _the_id_after_one_crash(emu: MidjourneyEmulator) -> str:
    """
    The id a run whose first try crashed after submitting ends with, after checking what was paid for.

    Airflow 3.3+: the retry reattaches to the first try's task, one submission. Below 3.3 there is no
    ``task_state_store``: common-compat's ResumableJobMixin stand-in submits on every try (see the README's
    "Reliability"), so the retry pays for a second video and ends with that one.
    """
    if AIRFLOW_V_3_3_PLUS:
        (only_id,) = _submitted_ids(emu)
        assert emu.counters["submit_accepted"] == 1
        return only_id
    first, second = _submitted_ids(emu)
    assert first != second
    assert emu.counters["submit_accepted"] == 2
    return second


@pytest.fixture
def fast_emulator(emulator: MidjourneyEmulator) -> MidjourneyEmulator:
    emulator.config.video_duration = 1.0
    return emulator


# -- resumable submission -----------------------------------------------------------------------------


def test_retry_after_a_crash_reattaches_to_the_live_task(run_dag: Any, fast_emulator: MidjourneyEmulator) -> None:
    with _dag("resume_live") as dag:
        _CrashAfterSubmit(task_id="submit", prompt="a boat", image=IMAGE, retries=2, retry_delay=NO_DELAY)
    run = run_dag(dag)

    assert task_states(run)[("submit", -1)] == ("success", 2)
    assert xcom_value(run, "submit") == _the_id_after_one_crash(fast_emulator)


def test_retry_reattaches_and_waits_in_the_triggerer(run_dag: Any, fast_emulator: MidjourneyEmulator) -> None:
    with _dag("resume_deferred") as dag:
        _CrashAfterSubmit(
            task_id="submit",
            prompt="a boat",
            image=IMAGE,
            wait_for_completion=True,
            deferrable=True,
            poll_interval=0.2,
            retries=2,
            retry_delay=NO_DELAY,
        )
    run = run_dag(dag)

    assert task_states(run)[("submit", -1)][0] == "success"
    only_id = _the_id_after_one_crash(fast_emulator)
    summary = xcom_value(run, "submit", TASK_SUMMARY_XCOM_KEY)
    assert summary["id"] == only_id
    assert summary["status"] == "SUCCESS"
    assert len(summary["video_urls"]) == 4


def test_retry_takes_a_task_that_already_finished(run_dag: Any, fast_emulator: MidjourneyEmulator) -> None:
    with _dag("resume_finished") as dag:
        _CrashAfterWait(
            task_id="submit",
            prompt="a boat",
            image=IMAGE,
            wait_for_completion=True,
            poll_interval=0.2,
            retries=1,
            retry_delay=NO_DELAY,
        )
    run = run_dag(dag)

    assert task_states(run)[("submit", -1)][0] == "success"
    only_id = _the_id_after_one_crash(fast_emulator)
    assert xcom_value(run, "submit") == only_id
    assert xcom_value(run, "submit", TASK_SUMMARY_XCOM_KEY)["video_urls"] == [
        f"{fast_emulator.root_url}/media/{only_id}/{i}.mp4" for i in range(4)
    ]


@pytest.mark.parametrize("ending", ["FAILURE", "CANCEL"])
def test_retry_submits_again_only_after_failure_or_cancel(
    run_dag: Any, fast_emulator: MidjourneyEmulator, ending: str
) -> None:
    fast_emulator.config.flavor = "trueai"  # the flavour with a cancel route

    def end_it(mj_task_id: str) -> None:
        if ending == "FAILURE":
            fast_emulator.fail_task(mj_task_id, "upstream moderation")
        else:
            from airflow_provider_mjvideo.hooks.midjourney import MidjourneyHook

            assert MidjourneyHook().cancel_task(mj_task_id) is True

    CRASH_HOOKS["submit"] = end_it
    try:
        with _dag(f"resume_after_{ending.lower()}") as dag:
            _CrashAfterSubmit(task_id="submit", prompt="a boat", image=IMAGE, retries=1, retry_delay=NO_DELAY)
        run = run_dag(dag)
    finally:
        CRASH_HOOKS.clear()

    assert task_states(run)[("submit", -1)][0] == "success"
    first, second = _submitted_ids(fast_emulator)
    assert fast_emulator.counters["submit_accepted"] == 2
    assert xcom_value(run, "submit") == second
    assert first != second


def test_force_new_submission_pays_for_a_new_video(run_dag: Any, fast_emulator: MidjourneyEmulator) -> None:
    with _dag("resume_forced") as dag:
        _CrashAfterSubmit(
            task_id="submit",
            prompt="a boat",
            image=IMAGE,
            force_new_submission="{{ params.fresh }}",
            params={"fresh": True},
            retries=1,
            retry_delay=NO_DELAY,
        )
    run = run_dag(dag)

    assert task_states(run)[("submit", -1)][0] == "success"
    _first, second = _submitted_ids(fast_emulator)
    assert fast_emulator.counters["submit_accepted"] == 2
    assert xcom_value(run, "submit") == second


def test_force_new_submission_is_validated_at_parse_time() -> None:
    with pytest.raises(ValueError, match="force_new_submission"):
        SubmitVideoOperator(task_id="t", prompt="p", image=IMAGE, force_new_submission="sometimes")


def test_the_stored_key_is_the_mixins_key() -> None:
    # Renaming it would orphan ids stored by in-flight retries.
    assert SubmitVideoOperator.external_id_key == STORED_TASK_ID_KEY == "mj_task_id"


# -- cancellation --------------------------------------------------------------------------------------


def _cancelled_ids(emu: MidjourneyEmulator) -> list[str]:
    return [request.path.split("/")[-2] for request in emu.requests_to("cancel")]


@pytest.mark.parametrize("deferrable", [False, True], ids=["polling", "deferrable"])
@pytest.mark.parametrize("cancel_on_stop", [True, False], ids=["cancel", "keep"])
def test_operator_wait_timeout_cancels_the_remote_task(
    run_dag: Any, emulator: MidjourneyEmulator, deferrable: bool, cancel_on_stop: bool
) -> None:
    with _dag(f"timeout_op_{deferrable}_{cancel_on_stop}") as dag:
        SubmitVideoOperator(
            task_id="submit",
            prompt="a boat [stuck]",
            image=IMAGE,
            wait_for_completion=True,
            deferrable=deferrable,
            poll_interval=0.2,
            timeout=1,
            cancel_on_stop=cancel_on_stop,
        )
    run = run_dag(dag)

    assert task_states(run)[("submit", -1)][0] == "failed"
    (only_id,) = _submitted_ids(emulator)
    assert _cancelled_ids(emulator) == ([only_id] if cancel_on_stop else [])
    assert emulator.counters["submit_accepted"] == 1


@pytest.mark.parametrize("mode", ["poke", "reschedule", "deferrable"])
def test_sensor_timeout_cancels_the_remote_task(run_dag: Any, emulator: MidjourneyEmulator, mode: str) -> None:
    from airflow_provider_mjvideo.hooks.midjourney import MidjourneyHook

    mj_task_id = MidjourneyHook().submit_video("a boat [stuck]", IMAGE)
    with _dag(f"timeout_sensor_{mode}") as dag:
        MidjourneyTaskSensor(
            task_id="wait",
            mj_task_id=mj_task_id,
            poke_interval=0.2 if mode != "reschedule" else 1,
            timeout=1.5,
            mode="reschedule" if mode == "reschedule" else "poke",
            deferrable=mode == "deferrable",
        )
    run = run_dag(dag)

    assert task_states(run)[("wait", -1)][0] == "failed"
    assert _cancelled_ids(emulator) == [mj_task_id]


@pytest.mark.usefixtures("mj_conn")
def test_on_kill_cancels_what_the_operator_waits_for(emulator: MidjourneyEmulator) -> None:
    from airflow_provider_mjvideo.hooks.midjourney import MidjourneyHook

    mj_task_id = MidjourneyHook().submit_video("a boat [stuck]", IMAGE)
    operator = SubmitVideoOperator(task_id="submit", prompt="a boat", image=IMAGE, wait_for_completion=True)
    operator.on_kill()  # nothing submitted yet: nothing to cancel
    assert _cancelled_ids(emulator) == []
    operator._live_task_id = mj_task_id
    operator.on_kill()
    assert _cancelled_ids(emulator) == [mj_task_id]
    assert emulator.tasks[mj_task_id]["status"] == "CANCEL"


@pytest.mark.parametrize("cancel_on_stop", [True, False])
@pytest.mark.usefixtures("mj_conn")
def test_on_kill_cancels_what_the_sensor_waits_for(emulator: MidjourneyEmulator, cancel_on_stop: bool) -> None:
    from airflow_provider_mjvideo.hooks.midjourney import MidjourneyHook

    mj_task_id = MidjourneyHook().submit_video("a boat [stuck]", IMAGE)
    sensor = MidjourneyTaskSensor(task_id="wait", mj_task_id=mj_task_id, cancel_on_stop=cancel_on_stop)
    sensor.on_kill()
    assert _cancelled_ids(emulator) == ([mj_task_id] if cancel_on_stop else [])


@pytest.mark.usefixtures("mj_conn")
def test_a_refused_or_failing_cancel_never_raises(emulator: MidjourneyEmulator) -> None:
    emulator.config.flavor = "novicezk"  # no cancel route: 404
    sensor = MidjourneyTaskSensor(task_id="wait", mj_task_id="1234567890")
    sensor.on_kill()
    assert len(emulator.requests_to("cancel")) == 1
