"""The emulator's image pipeline over real HTTP: imagine, its grid and buttons, the pictures on the fake CDN."""

from __future__ import annotations

import base64
import re
from typing import Any

import pytest
import requests
from helpers.emulator_api import BEARER, accepted_id, fetch, finished_grid, post, press, wait_for
from helpers.png import SIGNATURE, read_png

from airflow_provider_mjvideo.testing import media
from airflow_provider_mjvideo.testing.emulator import FLAVORS

UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
PNG_URI = "data:image/png;base64," + base64.b64encode(media.image_png(0)).decode()


# --------------------------------------------------------------------------- imagine


@pytest.mark.parametrize("flavor", FLAVORS)
def test_imagine_runs_to_a_grid_with_upscale_variation_and_reroll_buttons(start_emulator, flavor: str) -> None:
    emu = start_emulator(flavor=flavor)
    answer = post(emu, "imagine", prompt="a red fox", state="s1", botType="NIJI_JOURNEY").json()
    assert (answer["code"], answer["description"]) == (1, "Submit Success")
    task_id = answer["result"]
    first = fetch(emu, task_id)
    assert first["status"] in ("", "SUBMITTED")
    assert (first["imageUrl"], first["buttons"]) == (None, [])

    task = wait_for(emu, task_id)

    assert (task["action"], task["progress"], task["state"], task["botType"]) == (
        "IMAGINE",
        "100%",
        "s1",
        "NIJI_JOURNEY",
    )
    assert task["imageUrl"] == f"{emu.root_url}/media/{task_id}/grid.png"
    (job,) = {b["customId"].split("::")[4] for b in task["buttons"]}
    assert UUID_RE.match(job)
    expected = [(f"MJ::JOB::upsample::{n}::{job}", f"U{n}", "") for n in range(1, 5)]
    expected += [(f"MJ::JOB::variation::{n}::{job}", f"V{n}", "") for n in range(1, 5)]
    expected.append((f"MJ::JOB::reroll::0::{job}::SOLO", "", "🔄"))
    assert [(b["customId"], b["label"], b["emoji"]) for b in task["buttons"]] == expected
    assert all((b["style"], b["type"]) == (2, 2) for b in task["buttons"])
    singles = [f"{emu.root_url}/media/{task_id}/{i}.png" for i in range(4)]
    if flavor == "trueai":
        assert [u["url"] for u in task["imageUrls"]] == singles
        assert all(u["thumbnail"].startswith(u["url"]) for u in task["imageUrls"])
    else:
        assert "imageUrls" not in task
    assert fetch(emu, task_id)["buttons"] == task["buttons"]  # the job id is stable


@pytest.mark.parametrize(
    ("flavor", "body", "code", "description"),
    [
        ("trueai", {"base64Array": ["data:image/png;base64,!!!"]}, 4, "base64格式错误"),
        ("trueai", {"base64Array": ["https://cdn.example/a.png"]}, 4, "base64格式错误"),
        ("trueai", {"base64Array": [PNG_URI, 7]}, 4, "base64格式错误"),
        ("trueai", {"base64Array": PNG_URI}, 4, "base64格式错误"),
        ("trueai", {"base64Array": ["data:image/png;base64,"]}, 4, "base64格式错误"),
        ("novicezk", {"base64Array": ["data:image/png;base64,!!!"]}, 4, "base64Array items must be data:"),
        ("newapi", {"base64Array": ["not a data uri"]}, 4, "base64Array items must be data:"),
        ("trueai", {"prompt": "  "}, 4, "prompt is required"),
        ("newapi", {"prompt": None}, 4, "prompt is required"),
        ("trueai", {"botType": "DALL_E"}, 4, "botType must be one of"),
        ("trueai", {"prompt": "a [banned] fox"}, 24, "Banned prompt"),
    ],
)
def test_imagine_refusals(start_emulator, flavor: str, body: dict[str, Any], code: int, description: str) -> None:
    emu = start_emulator(flavor=flavor)
    response = post(emu, "imagine", **{"prompt": "a red fox", **body})
    assert response.status_code == 200
    answer = response.json()
    assert answer["code"] == code
    assert answer["description"].startswith(description)
    assert not answer["result"]
    if code == 24:
        assert answer["properties"]["bannedWord"]
    assert emu.tasks == {}
    assert emu.counters["rejected"]["imagine"] == 1


def test_imagine_records_the_decoded_image_prompts(start_emulator) -> None:
    emu = start_emulator()
    jpeg_uri = "data:image/jpeg;base64," + base64.b64encode(b"\xff\xd8jpeg").decode()
    task_id = accepted_id(post(emu, "imagine", prompt="a fox", base64Array=[PNG_URI, jpeg_uri]))
    snapshot = emu.tasks[task_id]
    assert snapshot["image_prompts"] == [
        {"mime": "image/png", "data": media.image_png(0)},
        {"mime": "image/jpeg", "data": b"\xff\xd8jpeg"},
    ]
    assert (snapshot["action"], snapshot["bot_type"], snapshot["json"]["botType"]) == ("IMAGINE", *["MID_JOURNEY"] * 2)


@pytest.mark.parametrize(
    ("flavor", "forced", "status", "answer"),
    [
        ("trueai", 21, 200, {"code": 21}),
        ("trueai", 22, 200, {"code": 22}),
        ("newapi", 21, 200, {"code": 1}),
        ("newapi", 22, 200, {"code": 1}),
        ("trueai", 23, 200, {"code": 23}),
        ("newapi", 30, 429, {"code": 30}),
        ("trueai", -1, 200, {"success": False, "code": -1, "message": "Daily limit reached"}),
    ],
)
def test_imagine_obeys_forced_submit_codes(start_emulator, flavor: str, forced: int, status: int, answer: dict) -> None:
    emu = start_emulator(flavor=flavor, submit_codes=[forced])
    response = post(emu, "imagine", prompt="a fox")
    assert response.status_code == status
    assert answer.items() <= response.json().items()
    assert len(emu.tasks) == (1 if forced in (21, 22) else 0)
    assert emu.config.submit_codes == []


def test_imagine_state_cap_and_outcome_markers(start_emulator) -> None:
    emu = start_emulator(image_duration=0.1)
    assert post(emu, "imagine", prompt="a fox", state="x" * 256).json() == {
        "success": False,
        "code": -1,
        "message": "state too long",
    }
    failed = accepted_id(post(emu, "imagine", prompt="a fox [fail]"))
    assert wait_for(emu, failed, "FAILURE")["failReason"] == "Emulated failure"
    novice = start_emulator(flavor="novicezk")
    assert post(novice, "imagine", prompt="a fox", state="x" * 300).json()["code"] == 1


# --------------------------------------------------------------------------- the CDN, counters, prefixes


def test_pictures_are_real_pngs_served_like_clips(start_emulator) -> None:
    emu = start_emulator()
    grid = finished_grid(emu)
    response = requests.get(grid["imageUrl"], timeout=5)
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "image/png"
    assert int(response.headers["Content-Length"]) == len(response.content)
    assert response.headers["Accept-Ranges"] == "bytes"
    picture = read_png(response.content)
    assert (picture.width, picture.height) == (media.GRID_SIZE, media.GRID_SIZE)
    corners = [picture.pixel(x, y) for y in (10, 100) for x in (10, 100)]
    assert corners == list(media.PALETTE)  # U1 top left, U2 top right, U3 bottom left, U4 bottom right
    for i, colour in enumerate(media.PALETTE):
        single = read_png(requests.get(f"{emu.root_url}/media/{grid['id']}/{i}.png", timeout=5).content)
        assert (single.width, single.height, single.pixel(33, 20)) == (media.IMAGE_SIZE, media.IMAGE_SIZE, colour)
    thumb = requests.get(grid["imageUrls"][0]["thumbnail"], timeout=5)
    assert thumb.content[:8] == SIGNATURE
    head = requests.get(grid["imageUrl"], headers={"Range": "bytes=0-7"}, timeout=5)
    assert (head.status_code, head.content) == (206, SIGNATURE)
    assert head.headers["Content-Range"] == f"bytes 0-7/{len(response.content)}"
    assert int(requests.head(grid["imageUrl"], timeout=5).headers["Content-Length"]) == len(response.content)
    for missing in (f"{grid['id']}/4.png", f"{grid['id']}/0.mp4", f"{grid['id']}/0.jpg", "999/grid.png"):
        assert requests.get(f"{emu.root_url}/media/{missing}", timeout=5).status_code == 404


def test_counts_faults_and_prefixes_per_route(start_emulator) -> None:
    emu = start_emulator(path_prefix="/api", fail_next=[("submit", "503")])
    assert post(emu, "imagine", prompt="a fox").status_code == 503  # the "submit" group covers imagine
    grid_id = accepted_id(post(emu, "imagine", prefix="/mj-fast", prompt="a fox"))
    assert emu.tasks[grid_id]["mode"] == "fast"
    emu.complete_task(grid_id)
    grid = fetch(emu, grid_id)
    assert grid["imageUrl"].startswith(emu.root_url + "/media/")
    assert requests.get(grid["imageUrl"], timeout=5).status_code == 200
    upscale_id = accepted_id(press(emu, grid, "U4"))
    assert post(emu, "action", prefix="/mj-relax", taskId=grid_id, customId="MJ::JOB::nope").json()["code"] == 4
    assert post(emu, "modal", taskId=upscale_id).json()["code"] == 4
    outside = requests.post(f"{emu.root_url}/mj/submit/imagine", json={"prompt": "p"}, headers=BEARER, timeout=5)
    assert outside.status_code == 404

    assert [r.mode for r in emu.requests_to("action")] == [None, "relax"]
    assert (emu.count("imagine"), emu.count("action"), emu.count("modal"), emu.count("submit")) == (2, 2, 1, 0)
    counters = emu.counters
    assert counters["accepted"] == {"submit": 0, "imagine": 1, "action": 1, "modal": 0}
    assert counters["rejected"] == {"submit": 0, "imagine": 0, "action": 1, "modal": 1}
    assert (counters["submit_accepted"], counters["submit_rejected"], counters["faults"]) == (0, 0, {"503": 1})
