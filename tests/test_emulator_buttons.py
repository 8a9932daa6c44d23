"""The emulator's buttons over real HTTP: upscale, variation, reroll, animate, and the remix modal."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest
import requests
from helpers.emulator_api import accepted_id, fetch, finished_grid, finished_upscale, post, press, wait_for

from airflow_provider_mjvideo.testing import MidjourneyEmulator, media
from airflow_provider_mjvideo.testing.emulator import FLAVORS

# --------------------------------------------------------------------------- buttons


@pytest.mark.parametrize("flavor", FLAVORS)
def test_upscale_gives_one_picture_and_animate_buttons(start_emulator, flavor: str) -> None:
    emu = start_emulator(flavor=flavor)
    grid = finished_grid(emu)
    upscale_id = accepted_id(press(emu, grid, "U2"))

    upscale = wait_for(emu, upscale_id)

    assert (upscale["action"], upscale["prompt"]) == ("UPSCALE", "a red fox")
    assert upscale["imageUrl"] == f"{emu.root_url}/media/{upscale_id}/0.png"
    assert requests.get(upscale["imageUrl"], timeout=5).content == media.image_png(1)  # quadrant 2
    job = upscale["buttons"][0]["customId"].split("::")[4]
    assert job != grid["buttons"][0]["customId"].split("::")[4]
    assert [(b["customId"], b["label"]) for b in upscale["buttons"]] == [
        (f"MJ::JOB::high_variation::1::{job}::SOLO", "Vary (Strong)"),
        (f"MJ::JOB::low_variation::1::{job}::SOLO", "Vary (Subtle)"),
        (f"MJ::JOB::animate_high::1::{job}::SOLO", "Animate (High motion)"),
        (f"MJ::JOB::animate_low::1::{job}::SOLO", "Animate (Low motion)"),
    ]
    assert upscale["properties"]["parentId"] == grid["id"]
    snapshot = emu.tasks[upscale_id]
    assert (snapshot["parent_id"], snapshot["button"]) == (grid["id"], grid["buttons"][1]["customId"])
    if flavor == "trueai":
        assert [u["url"] for u in upscale["imageUrls"]] == [upscale["imageUrl"]]


@pytest.mark.parametrize(("label", "action"), [("V3", "VARIATION"), ("🔄", "REROLL")])
def test_variation_and_reroll_give_new_grids(start_emulator, label: str, action: str) -> None:
    emu = start_emulator()
    task = wait_for(emu, accepted_id(press(emu, finished_grid(emu), label)))
    assert task["action"] == action
    assert task["imageUrl"].endswith("/grid.png")
    assert [b["label"] for b in task["buttons"]][:4] == ["U1", "U2", "U3", "U4"]


def test_upscale_without_video_has_no_animate_buttons(start_emulator) -> None:
    emu = start_emulator(flavor="novicezk", video_route=False)
    assert [b["label"] for b in finished_upscale(emu)["buttons"]] == ["Vary (Strong)", "Vary (Subtle)"]
    assert post(emu, "video", prompt="p", motion="low", image="https://cdn.example/a.png").status_code == 404
    assert emu.counters["accepted"]["submit"] == emu.counters["rejected"]["submit"] == 0


def test_animate_on_trueai_makes_a_video_from_the_upscaled_picture(start_emulator) -> None:
    emu = start_emulator()
    upscale = finished_upscale(emu)
    video_id = accepted_id(press(emu, upscale, "Animate (High motion)"))
    assert fetch(emu, video_id)["imageUrl"] == upscale["imageUrl"]

    video = wait_for(emu, video_id)

    assert (video["action"], video["imageUrl"]) == ("VIDEO", upscale["imageUrl"])
    assert video["properties"]["motion"] == "high"
    assert video["properties"]["parentId"] == upscale["id"]
    assert len(video["videoUrls"]) == 4
    clip = requests.get(video["videoUrls"][0]["url"], timeout=5)
    assert (clip.headers["Content-Type"], clip.content) == ("video/mp4", media.clip_bytes(0))
    assert video["buttons"][0]["customId"] == f"MJ::JOB::video_extend::1::{video_id}"


@pytest.mark.parametrize(
    ("flavor", "status", "answer"),
    [
        ("newapi", 400, {"description": "unknown_action:{custom_id}", "type": "upstream_error", "code": 4}),
        ("novicezk", 200, {"code": 4, "description": "Unsupported action: {custom_id}"}),
    ],
)
def test_animate_buttons_are_refused_where_the_action_route_has_no_video(
    start_emulator, flavor: str, status: int, answer: dict[str, Any]
) -> None:
    emu = start_emulator(flavor=flavor)
    upscale = finished_upscale(emu)
    custom_id = upscale["buttons"][2]["customId"]
    response = press(emu, upscale, "Animate (High motion)")
    assert response.status_code == status
    expected = {
        key: value.format(custom_id=custom_id) if isinstance(value, str) else value for key, value in answer.items()
    }
    assert expected.items() <= response.json().items()
    assert len(emu.tasks) == 2
    assert emu.counters["rejected"]["action"] == 1


def _missing(emu: MidjourneyEmulator, grid: dict[str, Any]) -> requests.Response:
    return post(emu, "action", taskId="123456789012345678", customId=grid["buttons"][0]["customId"])


def _unfinished(emu: MidjourneyEmulator, grid: dict[str, Any]) -> requests.Response:
    pending = accepted_id(post(emu, "imagine", prompt="a fox [stuck]"))
    return post(emu, "action", taskId=pending, customId=grid["buttons"][0]["customId"])


def _not_a_button(emu: MidjourneyEmulator, grid: dict[str, Any]) -> requests.Response:
    job = "00000000-0000-0000-0000-000000000000"
    return post(emu, "action", taskId=grid["id"], customId=f"MJ::JOB::upsample::1::{job}")


def _no_custom_id(emu: MidjourneyEmulator, grid: dict[str, Any]) -> requests.Response:
    return post(emu, "action", taskId=grid["id"])


GATEWAY = {"type": "upstream_error", "code": 4}


@pytest.mark.parametrize(
    ("flavor", "attempt", "status", "answer"),
    [
        ("trueai", _missing, 404, {"code": 3}),
        ("novicezk", _missing, 200, {"code": 3}),
        ("newapi", _missing, 400, {"description": "task_no_found", **GATEWAY}),
        ("trueai", _unfinished, 200, {"code": 4}),
        ("novicezk", _unfinished, 200, {"code": 4}),
        ("newapi", _unfinished, 400, {"description": "task_status_not_success", **GATEWAY}),
        ("trueai", _not_a_button, 200, {"code": 4}),
        ("novicezk", _not_a_button, 200, {"code": 4}),
        ("newapi", _not_a_button, 200, {"code": 4}),
        ("trueai", _no_custom_id, 200, {"code": 4, "description": "customId is required"}),
    ],
)
def test_action_refusals(start_emulator, flavor: str, attempt: Callable, status: int, answer: dict[str, Any]) -> None:
    emu = start_emulator(flavor=flavor)
    grid = finished_grid(emu)
    tasks_before = len(emu.tasks)
    response = attempt(emu, grid)
    assert response.status_code == status
    assert answer.items() <= response.json().items()
    assert len(emu.tasks) == tasks_before + (attempt is _unfinished)
    assert emu.counters["rejected"]["action"] == 1


# --------------------------------------------------------------------------- remix and modal


@pytest.mark.parametrize(
    ("flavor", "label", "code", "modal"),
    [
        ("trueai", "V1", 21, True),
        ("novicezk", "V1", 21, True),
        ("newapi", "V1", 1, True),
        ("trueai", "🔄", 21, True),
        ("trueai", "U1", 1, False),
    ],
)
def test_remix_holds_variations_in_modal_until_confirmed(
    start_emulator, flavor: str, label: str, code: int, modal: bool
) -> None:
    emu = start_emulator(flavor=flavor, remix=True, image_duration=0.1, newapi_blank_status_seconds=0.05)
    answer = press(emu, finished_grid(emu), label).json()
    assert answer["code"] == code
    task_id = answer["result"]
    if not modal:
        assert wait_for(emu, task_id)["action"] == "UPSCALE"
        return
    time.sleep(0.15)  # longer than image_duration: a MODAL task does not move by itself
    assert fetch(emu, task_id)["status"] == "MODAL"

    confirm = post(emu, "modal", taskId=task_id, prompt="a blue fox", maskBase64="").json()

    assert (confirm["code"], confirm["result"]) == (1, task_id)
    running = fetch(emu, task_id)
    assert running["status"] in ("SUBMITTED", "IN_PROGRESS")
    assert running["startTime"] is None or running["startTime"] > running["submitTime"] + 150
    task = wait_for(emu, task_id)
    assert (task["prompt"], task["imageUrl"].endswith("/grid.png")) == ("a blue fox", True)
    assert emu.tasks[task_id]["modal_prompt"] == "a blue fox"
    assert emu.counters["accepted"] == {"submit": 0, "imagine": 1, "action": 1, "modal": 1}


def test_remixed_animate_waits_for_the_modal_then_makes_the_video(start_emulator) -> None:
    emu = start_emulator(remix=True)
    answer = press(emu, finished_upscale(emu), "Animate (Low motion)").json()
    assert answer["code"] == 21
    assert fetch(emu, answer["result"])["status"] == "MODAL"
    assert post(emu, "modal", taskId=answer["result"], prompt="").json()["code"] == 1
    video = wait_for(emu, answer["result"])
    assert (video["action"], video["prompt"], len(video["videoUrls"])) == ("VIDEO", "a red fox", 4)


def test_the_modal_marker_still_means_modal_forever_and_can_be_confirmed(start_emulator) -> None:
    emu = start_emulator(video_duration=0.1)
    body = {"prompt": "a fox [modal]", "motion": "low", "image": "https://cdn.example/a.png"}
    task_id = accepted_id(post(emu, "video", **body))
    wait_for(emu, task_id, "MODAL")
    time.sleep(0.15)
    assert fetch(emu, task_id)["status"] == "MODAL"
    assert post(emu, "modal", taskId=task_id, prompt="a fox").json()["code"] == 1
    assert len(wait_for(emu, task_id)["videoUrls"]) == 4


@pytest.mark.parametrize(
    ("flavor", "target", "status", "answer"),
    [
        ("trueai", "unknown", 404, {"code": 3}),
        ("novicezk", "unknown", 200, {"code": 3}),
        ("newapi", "unknown", 400, {"description": "task_no_found", **GATEWAY}),
        ("trueai", "finished", 200, {"code": 4}),
        ("newapi", "finished", 200, {"code": 4}),
        ("trueai", "none", 200, {"code": 4, "description": "taskId is required"}),
    ],
)
def test_modal_refusals(start_emulator, flavor: str, target: str, status: int, answer: dict[str, Any]) -> None:
    emu = start_emulator(flavor=flavor)
    ids = {"unknown": "123456789012345678", "finished": finished_grid(emu)["id"], "none": None}
    response = post(emu, "modal", taskId=ids[target], prompt="p")
    assert response.status_code == status
    assert answer.items() <= response.json().items()
    assert emu.counters["rejected"]["modal"] == 1


def test_force_helpers_and_snapshots_cover_image_tasks(start_emulator) -> None:
    emu = start_emulator(image_duration=60)
    upscale = finished_upscale(emu)
    variation_id = accepted_id(press(emu, upscale, "Vary (Subtle)"))
    emu.fail_task(variation_id, "boom")
    failed = fetch(emu, variation_id)
    assert (failed["status"], failed["failReason"], failed["action"]) == ("FAILURE", "boom", "VARIATION")
    snapshot = emu.tasks[variation_id]
    assert (snapshot["status"], snapshot["parent_id"], snapshot["button"]) == (
        "FAILURE",
        upscale["id"],
        upscale["buttons"][1]["customId"],
    )
    assert snapshot["json"]["buttons"] == []
