"""
The image operators in ``dag.test()`` against the emulator: imagine, upscale, any button, animate an upscale,
MODAL confirmed with ``modal_prompt`` (in the worker and deferred), retries that reattach, bad input early.
"""

from __future__ import annotations

import datetime
from typing import Any

import pendulum
import pytest
from airflow.providers.common.compat.version_compat import AIRFLOW_V_3_3_PLUS
from airflow.sdk import DAG
from helpers.dag_runs import task_states, xcom_value

from airflow_provider_mjvideo.exceptions import MidjourneyValidationError
from airflow_provider_mjvideo.operators.image import SubmitActionOperator, SubmitImagineOperator, UpscaleImageOperator
from airflow_provider_mjvideo.operators.submit import TASK_SUMMARY_XCOM_KEY
from airflow_provider_mjvideo.operators.video import SubmitVideoOperator
from airflow_provider_mjvideo.testing import MidjourneyEmulator

NO_DELAY = datetime.timedelta(seconds=0)
WAIT = {"wait_for_completion": True, "poll_interval": 0.1}


def _dag(dag_id: str) -> DAG:
    return DAG(dag_id, schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC"), catchup=False)


@pytest.fixture
def image_emulator(emulator: MidjourneyEmulator) -> MidjourneyEmulator:
    emulator.config.video_duration = 0.4
    emulator.config.image_duration = 0.3
    return emulator


@pytest.mark.parametrize("deferrable", [False, True], ids=["worker", "deferred"])
def test_imagine_upscale_animate_in_one_run(run_dag: Any, image_emulator: MidjourneyEmulator, deferrable: bool) -> None:
    emu = image_emulator
    with _dag(f"images_chain_{deferrable}") as dag:
        imagine = SubmitImagineOperator(task_id="imagine", prompt="a fox", deferrable=deferrable, **WAIT)
        upscale = UpscaleImageOperator(
            task_id="upscale", mj_task_id=imagine.output, index="{{ 1 + 1 }}", deferrable=deferrable, **WAIT
        )
        animate = SubmitVideoOperator(
            task_id="animate", prompt="the fox runs", image_task_id=upscale.output, deferrable=deferrable, **WAIT
        )
        imagine >> upscale >> animate
    run = run_dag(dag)

    assert task_states(run) == {(name, -1): ("success", 1) for name in ("imagine", "upscale", "animate")}
    assert [emu.counters["accepted"][route] for route in ("imagine", "action", "submit")] == [1, 1, 1]
    grid = xcom_value(run, "imagine", TASK_SUMMARY_XCOM_KEY)
    upscaled = xcom_value(run, "upscale", TASK_SUMMARY_XCOM_KEY)
    video = xcom_value(run, "animate", TASK_SUMMARY_XCOM_KEY)
    assert (grid["action"], grid["kind"]) == ("IMAGINE", "image")
    assert (upscaled["action"], upscaled["kind"]) == ("UPSCALE", "image")
    assert "::upsample::3::" in emu.requests_to("action")[0].json["customId"]  # index 2 is Midjourney's U3
    (video_body,) = [r.json for r in emu.requests_to("submit")]
    assert video_body["image"] == upscaled["image_url"] == upscaled["image_urls"][0]
    assert (video["kind"], len(video["video_urls"])) == ("video", 4)
    assert xcom_value(run, "animate") == video["id"]
    assert xcom_value(run, "imagine", "mj_image_link") == grid["image_url"]
    assert xcom_value(run, "animate", "mj_video_link") == video["video_urls"][0]
    # Each paid step records its usage once, on its own route.
    usage = {name: xcom_value(run, name, "mj_usage") for name in ("imagine", "upscale", "animate")}
    assert {name: [(r["route"], r["action"], r["reattach"]) for r in records] for name, records in usage.items()} == {
        "imagine": [("/mj/submit/imagine", "imagine", False)],
        "upscale": [("/mj/submit/action", "upscale", False)],
        "animate": [("/mj/submit/video", "video", False)],
    }


@pytest.mark.parametrize("deferrable", [False, True], ids=["worker", "deferred"])
def test_a_remix_modal_is_confirmed_once_with_modal_prompt(
    run_dag: Any, image_emulator: MidjourneyEmulator, deferrable: bool
) -> None:
    emu = image_emulator
    grid_id = emu_grid(emu)
    emu.config.remix = True
    with _dag(f"images_modal_{deferrable}") as dag:
        SubmitActionOperator(
            task_id="vary",
            mj_task_id=grid_id,
            button="V1",
            modal_prompt="a fox in {{ 'snow' }}",
            deferrable=deferrable,
            poll_interval=0.1,
        )
    run = run_dag(dag)

    assert task_states(run) == {("vary", -1): ("success", 1)}
    (modal,) = [r.json for r in emu.requests_to("modal")]
    variation_id = xcom_value(run, "vary")
    assert modal == {"taskId": variation_id, "prompt": "a fox in snow", "maskBase64": ""}
    summary = xcom_value(run, "vary", TASK_SUMMARY_XCOM_KEY)
    assert (summary["status"], summary["action"]) == ("SUCCESS", "VARIATION")


def test_without_modal_prompt_a_modal_fails_without_retries(run_dag: Any, image_emulator: MidjourneyEmulator) -> None:
    # The error's words ("... modal_prompt confirms it") are pinned in test_hook_images.py.
    emu = image_emulator
    grid_id = emu_grid(emu)
    emu.config.remix = True
    with _dag("images_modal_unhandled") as dag:
        SubmitActionOperator(task_id="vary", mj_task_id=grid_id, button="V2", retries=2, retry_delay=NO_DELAY, **WAIT)
    run = run_dag(dag)

    assert task_states(run) == {("vary", -1): ("failed", 1)}  # permanent: no retry
    assert emu.count("modal") == 0


def test_an_unknown_button_fails_before_any_submission(run_dag: Any, image_emulator: MidjourneyEmulator) -> None:
    emu = image_emulator
    grid_id = emu_grid(emu)
    with _dag("images_unknown_button") as dag:
        SubmitActionOperator(task_id="press", mj_task_id=grid_id, button="U7", retries=2, retry_delay=NO_DELAY)
    run = run_dag(dag)

    assert task_states(run) == {("press", -1): ("failed", 1)}
    assert emu.count("action") == 0


class _CrashAfterImagine(SubmitImagineOperator):
    """Raises on the first try once the submitted id is in ``task_state_store`` (a lost worker)."""

    def poll_until_complete(self, external_id: Any, context: Any) -> str:  # type: ignore[override]
        if context["ti"].try_number == 1:
            raise RuntimeError(f"worker lost after submitting {external_id}")
        return super().poll_until_complete(external_id, context)


@pytest.mark.skipif(not AIRFLOW_V_3_3_PLUS, reason="task_state_store (reattaching) exists since Airflow 3.3")
def test_a_retry_after_a_crash_reattaches_to_the_grid_it_paid_for(
    run_dag: Any, image_emulator: MidjourneyEmulator
) -> None:
    emu = image_emulator
    with _dag("images_resume") as dag:
        _CrashAfterImagine(task_id="imagine", prompt="a fox", retries=2, retry_delay=NO_DELAY, **WAIT)
    run = run_dag(dag)

    assert task_states(run) == {("imagine", -1): ("success", 2)}
    assert emu.counters["accepted"]["imagine"] == 1
    (only_id,) = emu.tasks
    assert xcom_value(run, "imagine") == only_id


def emu_grid(emu: MidjourneyEmulator) -> str:
    """A finished grid made straight on the emulator (the tests above press its buttons)."""
    from airflow_provider_mjvideo.hooks.midjourney import MidjourneyHook

    hook = MidjourneyHook("midjourney_default", retry_delay=0.01)
    grid_id = hook.submit_imagine("a grid to press")
    emu.complete_task(grid_id)
    return grid_id


# ------------------------------------------------------------------------------------------ parse time


@pytest.mark.parametrize(
    ("parameter", "build"),
    [
        ("prompt", lambda: SubmitImagineOperator(task_id="t", prompt="")),
        ("bot_type", lambda: SubmitImagineOperator(task_id="t", prompt="p", bot_type="DALL_E")),
        ("images[0]", lambda: SubmitImagineOperator(task_id="t", prompt="p", images=["ftp:/x"])),
        ("index", lambda: UpscaleImageOperator(task_id="t", mj_task_id="17960000000000001", index=4)),
        ("mj_task_id", lambda: UpscaleImageOperator(task_id="t", mj_task_id="a/b", index=0)),
        ("button", lambda: SubmitActionOperator(task_id="t", mj_task_id="17960000000000001", button=" ")),
        ("modal_prompt", lambda: SubmitActionOperator(task_id="t", mj_task_id="1796", button="V1", modal_prompt="")),
        (
            "image_task_id",
            lambda: SubmitVideoOperator(
                task_id="t", prompt="p", image="https://cdn.example.com/a.png", image_task_id="17960000000000001"
            ),
        ),
        ("max_image_bytes", lambda: SubmitImagineOperator(task_id="t", prompt="p", max_image_bytes=-1)),
    ],
)
def test_literal_mistakes_fail_when_the_dag_is_parsed(parameter: str, build: Any) -> None:
    with pytest.raises(MidjourneyValidationError) as info:
        build()

    assert info.value.parameter == parameter


def test_templated_values_wait_for_rendering() -> None:
    with _dag("images_templated"):
        imagine = SubmitImagineOperator(task_id="imagine", prompt="{{ params.prompt }}", bot_type="{{ params.bot }}")
        UpscaleImageOperator(task_id="upscale", mj_task_id=imagine.output, index="{{ params.index }}")
        SubmitActionOperator(task_id="press", mj_task_id=imagine.output, button="{{ params.button }}")
        SubmitVideoOperator(task_id="animate", prompt="p", image_task_id="{{ ti.xcom_pull('upscale') }}")


def test_modal_prompt_makes_the_operator_wait() -> None:
    press = SubmitActionOperator(task_id="t", mj_task_id="17960000000000001", button="V1", modal_prompt="again")

    assert press.wait_for_completion is True
