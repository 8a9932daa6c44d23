"""Tests of the Midjourney video API emulator itself, over real HTTP."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import requests

from airflow_provider_mjvideo.testing import EmulatorConfig, FaultConfig, MidjourneyEmulator, media
from airflow_provider_mjvideo.testing.cli import main as cli_main

KEY = "emulator-key"
BEARER = {"Authorization": f"Bearer {KEY}"}
IMAGE = "https://cdn.example/first-frame.png"


@pytest.fixture
def emu(start_emulator: Callable[..., MidjourneyEmulator]) -> MidjourneyEmulator:
    """A default trueai/bearer emulator with 0.3 s videos."""
    return start_emulator()


def submit(
    emu: MidjourneyEmulator, headers: dict[str, str] | None = None, prefix: str = "", **body: Any
) -> requests.Response:
    """POST a video submit; defaults to a valid new-video body."""
    payload = {"prompt": "a red fox", "motion": "low", "image": IMAGE}
    payload.update(body)
    payload = {k: v for k, v in payload.items() if v is not None}
    return requests.post(
        f"{emu.url}{prefix}/mj/submit/video", json=payload, headers=BEARER if headers is None else headers, timeout=5
    )


def fetch(emu: MidjourneyEmulator, task_id: str) -> requests.Response:
    """GET one task."""
    return requests.get(f"{emu.url}/mj/task/{task_id}/fetch", headers=BEARER, timeout=5)


def wait_for(emu: MidjourneyEmulator, task_id: str, statuses: tuple[str, ...], timeout: float = 5.0) -> dict[str, Any]:
    """Poll until the task reaches one of ``statuses``; return it."""
    deadline = time.monotonic() + timeout
    while True:
        task = fetch(emu, task_id).json()
        if task["status"] in statuses:
            return task
        assert time.monotonic() < deadline, f"task stuck in {task['status']}"
        time.sleep(0.03)


def new_task(emu: MidjourneyEmulator, **body: Any) -> str:
    """Submit an accepted task and return its id."""
    response = submit(emu, **body)
    assert response.status_code == 200, response.text
    assert response.json()["code"] in (1, 21, 22), response.text
    return response.json()["result"]


def finished_task(emu: MidjourneyEmulator, **body: Any) -> str:
    """Submit a task and wait for its SUCCESS."""
    task_id = new_task(emu, **body)
    wait_for(emu, task_id, ("SUCCESS",))
    return task_id


# --------------------------------------------------------------------------- lifecycle and media


def test_new_video_lifecycle_to_success_with_playable_clips(emu: MidjourneyEmulator) -> None:
    response = submit(emu, state="my-state")
    body = response.json()
    assert body["code"] == 1
    assert body["description"] == "Submit Success"
    task_id = body["result"]
    assert isinstance(task_id, str)
    assert task_id.isdigit()
    assert int(task_id) > 2**53
    assert int(float(task_id)) != int(task_id)

    seen: list[tuple[str, str]] = []
    deadline = time.monotonic() + 5
    while True:
        task = fetch(emu, task_id).json()
        seen.append((task["status"], task["progress"]))
        if task["status"] == "SUCCESS":
            break
        assert task["finishTime"] is None
        assert task["videoUrls"] == []
        assert time.monotonic() < deadline
        time.sleep(0.02)
    statuses = [s for s, _ in seen]
    assert statuses[0] == "SUBMITTED"
    assert "IN_PROGRESS" in statuses
    progress = [int(p.rstrip("%")) for s, p in seen if s == "IN_PROGRESS"]
    assert progress == sorted(progress)

    assert task["progress"] == "100%"
    assert task["action"] == "VIDEO"
    assert task["state"] == "my-state"
    assert task["imageUrl"] == IMAGE
    assert task["failReason"] is None
    assert task["submitTime"] <= task["startTime"] <= task["finishTime"]
    assert abs(task["finishTime"] / 1000 - time.time()) < 60
    for junk in ("botType", "nonce", "instanceId"):
        assert junk in task
    urls = [v["url"] for v in task["videoUrls"]]
    assert len(urls) == 4
    assert task["videoUrl"] == urls[0]
    clips = []
    for url in urls:
        assert url.startswith(emu.url + "/media/")
        clip = requests.get(url, timeout=5)
        assert clip.status_code == 200
        assert clip.headers["Content-Type"] == "video/mp4"
        assert clip.headers["Accept-Ranges"] == "bytes"
        assert int(clip.headers["Content-Length"]) == len(clip.content)
        assert clip.content[4:8] == b"ftyp"
        clips.append(clip.content)
    assert len(set(clips)) == 4
    thumb = requests.get(task["videoUrls"][0]["thumbnail"], timeout=5)
    assert thumb.headers["Content-Type"] == "image/jpeg"
    assert thumb.content[:2] == b"\xff\xd8"
    counters = emu.counters
    assert counters["submit_accepted"] == 1
    assert counters["fetch"] == emu.count("fetch") == len(seen)
    assert counters["media"] == 5
    assert emu.requests[0].json["prompt"] == "a red fox"
    assert emu.requests[0].headers["authorization"] == f"Bearer {KEY}"


def test_packaged_clips_are_small_distinct_h264_mp4() -> None:
    clips = [media.clip_bytes(i) for i in range(4)]
    assert len(set(clips)) == 4
    assert sum(len(c) for c in clips) < 100_000
    for clip in clips:
        assert clip[4:8] == b"ftyp"
        assert b"moov" in clip
        assert b"avc1" in clip
    with pytest.raises(IndexError):
        media.clip_bytes(4)


def test_batch_size_from_body_and_times_as_zero(start_emulator: Callable[..., MidjourneyEmulator]) -> None:
    emu = start_emulator(zero_times=True, video_duration=0.2)
    task_id = new_task(emu, batchSize=2)
    first = fetch(emu, task_id).json()
    assert first["finishTime"] == 0
    assert first["startTime"] == 0
    task = wait_for(emu, task_id, ("SUCCESS",))
    assert len(task["videoUrls"]) == 2
    assert requests.get(f"{emu.root_url}/media/{task_id}/2.mp4", timeout=5).status_code == 404
    assert submit(emu, batchSize=3).json()["code"] == 4


def test_urls_appear_after_success_delay(start_emulator: Callable[..., MidjourneyEmulator]) -> None:
    emu = start_emulator(video_duration=0.1, urls_after_success=0.4)
    task_id = new_task(emu)
    task = wait_for(emu, task_id, ("SUCCESS",))
    assert task["videoUrls"] == []
    assert task["videoUrl"] is None
    time.sleep(0.45)
    assert len(fetch(emu, task_id).json()["videoUrls"]) == 4


@pytest.mark.parametrize(
    ("shape", "check"),
    [
        ("objects", lambda t: len(t["videoUrls"]) == 4 and t["videoUrl"] == t["videoUrls"][0]["url"]),
        ("strings", lambda t: len(t["videoUrls"]) == 4 and all(isinstance(u, str) for u in t["videoUrls"])),
        ("video_url_only", lambda t: t["videoUrl"].endswith("/0.mp4") and "videoUrls" not in t),
        ("video_urls_json_string", lambda t: len(json.loads(t["video_urls"])) == 4 and "videoUrls" not in t),
        ("image_url_mp4", lambda t: t["imageUrl"].endswith(".mp4") and "videoUrl" not in t),
    ],
)
def test_url_shapes(
    start_emulator: Callable[..., MidjourneyEmulator], shape: str, check: Callable[[dict], bool]
) -> None:
    emu = start_emulator(url_shape=shape, video_duration=0.1)
    task_id = new_task(emu)
    assert fetch(emu, task_id).json().get("imageUrl") in (IMAGE, None)
    task = wait_for(emu, task_id, ("SUCCESS",))
    assert check(task), task


def test_range_requests(emu: MidjourneyEmulator) -> None:
    task_id = finished_task(emu)
    url = f"{emu.root_url}/media/{task_id}/1.mp4"
    whole = media.clip_bytes(1)
    part = requests.get(url, headers={"Range": "bytes=0-99"}, timeout=5)
    assert part.status_code == 206
    assert part.content == whole[:100]
    assert part.headers["Content-Range"] == f"bytes 0-99/{len(whole)}"
    tail = requests.get(url, headers={"Range": "bytes=-10"}, timeout=5)
    assert tail.status_code == 206
    assert tail.content == whole[-10:]
    open_ended = requests.get(url, headers={"Range": "bytes=100-"}, timeout=5)
    assert open_ended.content == whole[100:]
    bad = requests.get(url, headers={"Range": f"bytes={len(whole) + 5}-"}, timeout=5)
    assert bad.status_code == 416
    head = requests.head(url, timeout=5)
    assert head.status_code == 200
    assert int(head.headers["Content-Length"]) == len(whole)


def test_streamed_clip_of_configured_size(start_emulator: Callable[..., MidjourneyEmulator]) -> None:
    size = 5 * 1024 * 1024 + 7
    emu = start_emulator(clip_size_bytes=size, video_duration=0.05)
    task_id = finished_task(emu)
    url = f"{emu.root_url}/media/{task_id}/0.mp4"
    with requests.get(url, stream=True, timeout=10) as response:
        assert int(response.headers["Content-Length"]) == size
        total = 0
        head = b""
        for piece in response.iter_content(1 << 16):
            if len(head) < 64:
                head += piece[:64]
            total += len(piece)
    assert total == size
    assert head[4:8] == b"ftyp"
    offset = size - 300
    tail = requests.get(url, headers={"Range": f"bytes={offset}-"}, timeout=5).content
    assert tail == media.expected_filler(offset, 300)
    assert (
        b"".join(media.streamed_clip(5000, chunk=333, start=1200, stop=4000))
        == b"".join(media.streamed_clip(5000))[1200:4000]
    )


def test_media_status_overrides_and_unknown_task(emu: MidjourneyEmulator) -> None:
    task_id = finished_task(emu)
    emu.config.media_status = {f"{task_id}/1": 403}
    assert requests.get(f"{emu.root_url}/media/{task_id}/0.mp4", timeout=5).status_code == 200
    assert requests.get(f"{emu.root_url}/media/{task_id}/1.mp4", timeout=5).status_code == 403
    emu.config.media_status = {"*": 410}
    assert requests.get(f"{emu.root_url}/media/{task_id}/0.mp4", timeout=5).status_code == 410
    emu.config.media_status = {}
    assert requests.get(f"{emu.root_url}/media/999/0.mp4", timeout=5).status_code == 404


def test_media_drop_after_bytes(start_emulator: Callable[..., MidjourneyEmulator]) -> None:
    emu = start_emulator(media_drop_after_bytes=1000, video_duration=0.05)
    task_id = finished_task(emu)
    received: list[bytes] = []

    def drain(response: requests.Response) -> None:
        for piece in response.iter_content(100):
            received.append(piece)

    with requests.get(f"{emu.root_url}/media/{task_id}/0.mp4", stream=True, timeout=5) as response:
        assert int(response.headers["Content-Length"]) == len(media.clip_bytes(0))
        with pytest.raises(requests.exceptions.RequestException):
            drain(response)
    assert b"".join(received) == media.clip_bytes(0)[:1000]
    assert emu.counters["faults"]["truncated"] == 1
    assert emu.requests_to("media")[-1].fault == "truncated"


# --------------------------------------------------------------------------- auth


@pytest.mark.parametrize(
    ("style", "header", "ok"),
    [
        ("bearer", {"Authorization": f"Bearer {KEY}"}, True),
        ("bearer", {"Authorization": KEY}, False),
        ("bearer", {"mj-api-secret": KEY}, False),
        ("bearer", {"Authorization": "Bearer wrong"}, False),
        ("mj-api-secret", {"mj-api-secret": KEY}, True),
        ("mj-api-secret", {"Authorization": f"Bearer {KEY}"}, False),
        ("raw", {"Authorization": KEY}, True),
        ("raw", {"mj-api-secret": KEY}, True),
        ("raw", {"Authorization": f"Bearer {KEY}"}, False),
        ("any", {"Authorization": f"Bearer {KEY}"}, True),
        ("any", {"Authorization": KEY}, True),
        ("any", {"mj-api-secret": KEY}, True),
        ("any", {}, False),
    ],
)
def test_auth_styles(start_emulator: Callable[..., MidjourneyEmulator], style: str, header: dict, ok: bool) -> None:
    emu = start_emulator(auth_style=style)
    response = submit(emu, headers=header)
    assert (response.status_code == 200) is ok
    if not ok:
        assert response.status_code == 401
        assert emu.counters["auth_failed"] == 1
        assert emu.tasks == {}


@pytest.mark.parametrize(
    ("flavor", "check"),
    [
        ("novicezk", lambda r: r.content == b""),
        ("trueai", lambda r: r.headers["Content-Type"].startswith("text/plain") and b"Unauthorized" in r.content),
        ("newapi", lambda r: "message" in r.json()["error"]),
    ],
)
def test_unauthorized_shape_per_flavor(
    start_emulator: Callable[..., MidjourneyEmulator], flavor: str, check: Callable[[requests.Response], bool]
) -> None:
    emu = start_emulator(flavor=flavor)
    response = requests.get(f"{emu.url}/mj/task/1/fetch", headers={"Authorization": "Bearer nope"}, timeout=5)
    assert response.status_code == 401
    assert check(response)


def test_media_needs_no_auth_and_connection_json(start_emulator: Callable[..., MidjourneyEmulator]) -> None:
    emu = start_emulator(auth_style="raw", api_key="k1")
    conn = json.loads(emu.connection_json())
    assert conn == {"conn_type": "midjourney", "host": emu.url, "password": "k1", "extra": {"auth_style": "raw"}}
    assert json.loads(emu.connection_uri)["host"] == emu.url
    response = submit(emu, headers={"Authorization": "k1"})
    task_id = response.json()["result"]
    emu.complete_task(task_id)
    assert requests.get(f"{emu.root_url}/media/{task_id}/0.mp4", timeout=5).status_code == 200


# --------------------------------------------------------------------------- submit rules


@pytest.mark.parametrize(
    "body",
    [
        {"prompt": "   "},
        {"prompt": None},
        {"motion": "medium"},
        {"motion": None},
        {"action": "upscale"},
        {"image": None},
        {"image": ""},
    ],
)
def test_submit_validation_code_4(emu: MidjourneyEmulator, body: dict[str, Any]) -> None:
    response = submit(emu, **body)
    assert response.status_code == 200
    assert response.json()["code"] == 4
    assert emu.tasks == {}
    assert emu.counters["submit_rejected"] == 1


def test_state_too_long_and_banned_prompt(start_emulator: Callable[..., MidjourneyEmulator]) -> None:
    emu = start_emulator()
    too_long = submit(emu, state="x" * 256)
    assert too_long.status_code == 200
    assert too_long.json() == {"success": False, "code": -1, "message": "state too long"}
    assert submit(emu, state="x" * 255).json()["code"] == 1
    banned = submit(emu, prompt="a [banned] thing").json()
    assert banned["code"] == 24
    assert banned["properties"]["bannedWord"]
    novice = start_emulator(flavor="novicezk")
    assert submit(novice, state="x" * 300, headers=BEARER).json()["code"] == 1


def test_extend_rules(emu: MidjourneyEmulator) -> None:
    parent = new_task(emu)
    # Parent not SUCCESS yet.
    pending = submit(emu, action="extend", taskId=parent, index=0, image=None).json()
    assert pending["code"] == 4
    wait_for(emu, parent, ("SUCCESS",))
    # Only camelCase taskId is read.
    ignored = submit(emu, action="extend", task_id=parent, index=0, image=None).json()
    assert ignored["code"] == 4
    unknown = submit(emu, action="extend", taskId="123456789012345678", index=0, image=None)
    assert unknown.status_code == 404
    assert unknown.json()["code"] == 3
    assert submit(emu, action="extend", taskId=parent, index=4, image=None).json()["code"] == 4
    assert submit(emu, action="extend", taskId=parent, index="1", image=None).json()["code"] == 4
    assert submit(emu, action="extend", taskId=parent, index=1, prompt="", image=None).json()["code"] == 4
    child = submit(emu, action="extend", taskId=parent, task_id=parent, index=2, image=None).json()
    assert child["code"] == 1
    snapshot = emu.tasks[child["result"]]
    assert snapshot["parent_id"] == parent
    assert snapshot["index"] == 2
    assert snapshot["kind"] == "extend"
    task = wait_for(emu, child["result"], ("SUCCESS",))
    assert task["action"] == "VIDEO"
    assert task["properties"]["parentId"] == parent


def test_extend_on_newapi_and_action_name(start_emulator: Callable[..., MidjourneyEmulator]) -> None:
    emu = start_emulator(flavor="newapi", extend_action_name="VIDEO_EXTEND", video_duration=0.1)
    parent = finished_task(emu)
    as_string = submit(emu, action="extend", taskId=parent, index="1")
    assert as_string.status_code == 400
    child = new_task(emu, action="extend", taskId=parent, index=1)
    assert wait_for(emu, child, ("SUCCESS",))["action"] == "VIDEO_EXTEND"


def test_submit_codes_queue(emu: MidjourneyEmulator) -> None:
    emu.config.submit_codes = [21, 22, 4, 23, 24, 3, 9, 30, -1]
    first = submit(emu).json()
    assert (first["code"], first["description"]) == (21, "Already exists")
    assert first["result"] in emu.tasks
    second = submit(emu).json()
    assert second["code"] == 22
    assert "queue" in second["description"].lower()
    for code in (4, 23, 24, 3, 9):
        response = submit(emu)
        assert response.status_code == 200
        assert response.json()["code"] == code
        assert not response.json()["result"]
    rate_limited = submit(emu)
    assert rate_limited.status_code == 429
    assert rate_limited.json()["code"] == 30
    envelope = submit(emu)
    assert envelope.status_code == 200
    assert envelope.json() == {"success": False, "code": -1, "message": "Daily limit reached"}
    assert submit(emu).json()["code"] == 1
    counters = emu.counters
    assert counters["submit_accepted"] == 3
    assert counters["submit_rejected"] == 7
    assert len(emu.tasks) == 3


def test_newapi_rewrites_codes_blank_status_and_no_cancel(start_emulator: Callable[..., MidjourneyEmulator]) -> None:
    emu = start_emulator(flavor="newapi", submit_codes=[21, 22], newapi_blank_status_seconds=0.2, video_duration=0.4)
    ids = [submit(emu).json() for _ in range(2)]
    assert [r["code"] for r in ids] == [1, 1]
    task_id = ids[0]["result"]
    assert fetch(emu, task_id).json()["status"] == ""
    assert wait_for(emu, task_id, ("SUCCESS",))["progress"] == "100%"
    cancel = requests.post(f"{emu.url}/mj/task/{task_id}/cancel", headers=BEARER, timeout=5)
    assert cancel.status_code == 404
    unknown = fetch(emu, "424242")
    assert unknown.status_code == 400
    assert unknown.json()["description"] == "task_no_found"


@pytest.mark.parametrize(
    ("flavor", "mode", "status", "body"),
    [
        ("trueai", "empty", 200, b""),
        ("trueai", "null", 200, b"null"),
        ("trueai", "204", 204, b""),
        ("novicezk", "empty", 200, b"null"),
    ],
)
def test_unknown_fetch(
    start_emulator: Callable[..., MidjourneyEmulator], flavor: str, mode: str, status: int, body: bytes
) -> None:
    emu = start_emulator(flavor=flavor, unknown_fetch=mode)
    response = fetch(emu, "777")
    assert response.status_code == status
    assert response.content == body


def test_outcome_markers_and_fail_rate(start_emulator: Callable[..., MidjourneyEmulator]) -> None:
    emu = start_emulator(video_duration=0.2)
    failed = new_task(emu, prompt="x [fail]")
    cancelled = new_task(emu, prompt="x [cancel]")
    modal = new_task(emu, prompt="x [modal]")
    stuck = new_task(emu, prompt="x [stuck]")
    task = wait_for(emu, failed, ("FAILURE",))
    assert task["failReason"] == "Emulated failure"
    assert task["progress"] == ""
    assert wait_for(emu, cancelled, ("CANCEL",))["status"] == "CANCEL"
    time.sleep(0.25)
    assert fetch(emu, modal).json()["status"] == "MODAL"
    assert fetch(emu, stuck).json()["status"] == "IN_PROGRESS"
    emu.config.fail_rate = 1.0
    assert wait_for(emu, new_task(emu), ("FAILURE", "SUCCESS"))["status"] == "FAILURE"


def test_force_helpers_cancel_and_reset(emu: MidjourneyEmulator) -> None:
    emu.config.video_duration = 60
    a, b, c = new_task(emu), new_task(emu), new_task(emu)
    emu.complete_task(a)
    emu.fail_task(b, "boom")
    assert fetch(emu, a).json()["status"] == "SUCCESS"
    failed = fetch(emu, b).json()
    assert (failed["status"], failed["failReason"]) == ("FAILURE", "boom")
    cancel = requests.post(f"{emu.url}/mj/task/{c}/cancel", headers=BEARER, timeout=5)
    assert cancel.json()["code"] == 1
    assert fetch(emu, c).json()["status"] == "CANCEL"
    assert requests.post(f"{emu.url}/mj/task/{c}/cancel", headers=BEARER, timeout=5).json()["code"] == 4
    assert emu.counters["cancel"] == 2
    with pytest.raises(KeyError):
        emu.complete_task("1")
    emu.reset()
    assert emu.tasks == {}
    assert emu.requests == []
    assert emu.counters["requests"] == 0
    assert emu.config.video_duration == 60


# --------------------------------------------------------------------------- list-by-condition


def test_list_by_condition(emu: MidjourneyEmulator) -> None:
    a, b = new_task(emu), new_task(emu)
    url = f"{emu.url}/mj/task/list-by-condition"
    listed = requests.post(url, json={"ids": [a, "999", b]}, headers=BEARER, timeout=5).json()
    assert [t["id"] for t in listed] == [a, b]
    assert requests.post(url, json={"ids": []}, headers=BEARER, timeout=5).json() == []
    emu.config.max_list_ids = 1
    assert requests.post(url, json={"ids": [a, b]}, headers=BEARER, timeout=5).status_code == 400
    emu.config.list_by_condition_enabled = False
    assert requests.post(url, json={"ids": [a]}, headers=BEARER, timeout=5).status_code == 404
    assert emu.count("list") == 4


# --------------------------------------------------------------------------- prefixes


def test_speed_prefixes(emu: MidjourneyEmulator) -> None:
    for prefix, mode in (("/mj-fast", "fast"), ("/mj-relax", "relax"), ("/mj-turbo", "turbo"), ("", None)):
        task_id = submit(emu, prefix=prefix).json()["result"]
        assert emu.tasks[task_id]["mode"] == mode
        assert fetch(emu, task_id).json()["properties"]["mode"] == mode
        assert requests.get(f"{emu.url}{prefix}/mj/task/{task_id}/fetch", headers=BEARER, timeout=5).ok
    assert emu.requests_to("submit")[0].mode == "fast"


def test_path_prefix(start_emulator: Callable[..., MidjourneyEmulator]) -> None:
    emu = start_emulator(path_prefix="/api/")
    assert emu.url == emu.root_url + "/api"
    task_id = submit(emu, prefix="/mj-fast").json()["result"]
    assert emu.tasks[task_id]["mode"] == "fast"
    outside = requests.post(f"{emu.root_url}/mj/submit/video", json={}, headers=BEARER, timeout=5)
    assert outside.status_code == 404
    emu.complete_task(task_id)
    task = fetch(emu, task_id).json()
    assert task["videoUrls"][0]["url"].startswith(emu.root_url + "/media/")
    assert requests.get(task["videoUrl"], timeout=5).status_code == 200


# --------------------------------------------------------------------------- faults


@pytest.mark.parametrize(
    ("kind", "status"),
    [("500", 500), ("502", 502), ("503", 503), ("504", 504), ("429", 429), ("malformed", 200), ("slow", 200)],
)
def test_fetch_faults_via_fail_next(emu: MidjourneyEmulator, kind: str, status: int) -> None:
    task_id = new_task(emu)
    emu.config.faults = FaultConfig(slow_seconds=0.2, retry_after=0.25, fail_next=[("fetch", kind)])
    started = time.monotonic()
    response = fetch(emu, task_id)
    elapsed = time.monotonic() - started
    assert response.status_code == status
    if kind == "500":
        assert response.json()["code"] == 9
    if kind in ("502", "503", "504"):
        assert response.headers["Content-Type"].startswith("text/html")
    if kind == "429":
        assert response.headers["Retry-After"] == "0.25"
    if kind == "malformed":
        with pytest.raises(requests.exceptions.JSONDecodeError):
            response.json()
    if kind == "slow":
        assert elapsed >= 0.2
        assert response.json()["id"] == task_id
    assert fetch(emu, task_id).status_code == 200
    assert emu.counters["faults"] == {kind: 1}
    assert [r.fault for r in emu.requests_to("fetch")] == [kind, None]


def test_drop_fault_and_submit_fault_creates_no_task(emu: MidjourneyEmulator) -> None:
    emu.config.fail_next = [("fetch", "drop"), ("submit", "drop"), ("submit", "503")]
    with pytest.raises(requests.exceptions.ConnectionError):
        submit(emu)
    assert submit(emu).status_code == 503
    assert emu.tasks == {}
    assert emu.counters["submit_accepted"] == 0
    task_id = new_task(emu)
    with pytest.raises(requests.exceptions.ConnectionError):
        fetch(emu, task_id)
    assert fetch(emu, task_id).ok
    assert emu.config.fail_next == []
    assert emu.counters["faults"] == {"drop": 2, "503": 1}
    assert emu.requests[0].status == 0
    assert emu.requests[1].status == 503


def test_fault_group_covers_list_and_cancel(emu: MidjourneyEmulator) -> None:
    emu.config.faults.fail_next = [("fetch", "500"), ("fetch", "502")]
    task_id = new_task(emu)
    listed = requests.post(f"{emu.url}/mj/task/list-by-condition", json={"ids": [task_id]}, headers=BEARER, timeout=5)
    assert listed.status_code == 500
    cancel = requests.post(f"{emu.url}/mj/task/{task_id}/cancel", headers=BEARER, timeout=5)
    assert cancel.status_code == 502


def test_fault_rates_are_seeded_and_precede_auth(start_emulator: Callable[..., MidjourneyEmulator]) -> None:
    def run() -> list[int]:
        emu = start_emulator(faults=FaultConfig(seed=7, fetch={"500": 0.3, "429": 0.2}))
        return [fetch(emu, "1").status_code for _ in range(40)]

    first, second = run(), run()
    assert first == second
    assert {500, 429, 200} <= set(first)
    emu = start_emulator(faults=FaultConfig(submit={"503": 1.0}))
    response = submit(emu, headers={"Authorization": "Bearer wrong"})
    assert response.status_code == 503
    assert emu.counters["auth_failed"] == 0


def test_response_delay(start_emulator: Callable[..., MidjourneyEmulator]) -> None:
    emu = start_emulator(response_delay=0.2)
    started = time.monotonic()
    assert fetch(emu, "1").status_code == 200
    assert time.monotonic() - started >= 0.2


# --------------------------------------------------------------------------- notifyHook


class _Receiver(BaseHTTPRequestHandler):
    received: list[dict[str, Any]]

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.server.received.append(json.loads(body))  # type: ignore[attr-defined]
        self.send_response(204)
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """A tiny local HTTP server that stores JSON bodies POSTed to it."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    server.received = []  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hook", server.received  # type: ignore[attr-defined]
    server.shutdown()
    server.server_close()


def test_notify_hook_posts_to_loopback_only(
    emu: MidjourneyEmulator, receiver: tuple[str, list[dict[str, Any]]]
) -> None:
    hook, received = receiver
    task_id = new_task(emu, notifyHook=hook, state="s1")
    ignored = new_task(emu, notifyHook="http://192.0.2.10/hook")
    deadline = time.monotonic() + 5
    while not (received and received[-1]["status"] == "SUCCESS" and received[-1]["videoUrls"]):
        assert time.monotonic() < deadline, received
        time.sleep(0.05)
    assert {p["id"] for p in received} == {task_id}
    assert received[-1]["state"] == "s1"
    assert len({(p["status"], p["progress"]) for p in received}) >= 2
    # The receiver stores a body before it answers; the emulator records the POST once it has the answer.
    while len(emu.notifications) < len(received):
        assert time.monotonic() < deadline, (emu.notifications, received)
        time.sleep(0.05)
    sent = emu.notifications
    assert all(url == hook for url, _ in sent)
    assert emu.counters["notify_sent"] == len(sent) >= len(received)
    assert emu.tasks[ignored]["notify_hook"] is None


# --------------------------------------------------------------------------- server robustness and CLI


def test_many_concurrent_pollers(emu: MidjourneyEmulator) -> None:
    task_id = new_task(emu)

    def poll(_: int) -> int:
        with requests.Session() as session:
            codes = [session.get(f"{emu.url}/mj/task/{task_id}/fetch", headers=BEARER, timeout=10) for _ in range(3)]
        return sum(r.status_code == 200 for r in codes)

    with ThreadPoolExecutor(max_workers=100) as pool:
        assert sum(pool.map(poll, range(200))) == 600
    assert emu.counters["fetch"] == 600


def test_stop_closes_keep_alive_connections_and_restart() -> None:
    for _ in range(3):
        emu = MidjourneyEmulator(EmulatorConfig()).start()
        session = requests.Session()
        assert session.get(f"{emu.url}/mj/task/1/fetch", headers=BEARER, timeout=5).ok
        url = emu.url
        started = time.monotonic()
        emu.stop()
        assert time.monotonic() - started < 2
        with pytest.raises(requests.exceptions.ConnectionError):
            session.get(f"{url}/mj/task/1/fetch", headers=BEARER, timeout=5)
        session.close()
    with pytest.raises(ValueError, match="loopback"):
        MidjourneyEmulator(host="0.0.0.0")


def test_a_stopped_emulator_comes_back_on_its_port_with_its_tasks_log_and_counters() -> None:
    with MidjourneyEmulator(EmulatorConfig(api_key=KEY, video_duration=3600)) as emu:
        task_id = new_task(emu)
        url, before = emu.url, emu.counters
        emu.stop()
        with pytest.raises(requests.exceptions.ConnectionError):
            requests.get(f"{url}/mj/task/{task_id}/fetch", headers=BEARER, timeout=5)
        emu.start()
        assert emu.url == url
        assert fetch(emu, task_id).json()["status"] in ("SUBMITTED", "IN_PROGRESS")
        assert emu.counters["submit_accepted"] == before["submit_accepted"] == 1
        assert [r.route for r in emu.requests] == ["submit", "fetch"]


def test_server_is_silent_on_faults_and_client_disconnects(
    emu: MidjourneyEmulator, capfd: pytest.CaptureFixture[str]
) -> None:
    emu.config.fail_next = [("fetch", "drop"), ("fetch", "500")]
    with pytest.raises(requests.exceptions.ConnectionError):
        fetch(emu, "1")
    assert fetch(emu, "1").status_code == 500
    assert requests.get(f"{emu.url}/nowhere", timeout=5).status_code == 404
    captured = capfd.readouterr()
    assert captured.out == ""
    assert captured.err == ""


def test_cli_main_in_thread_and_rejects_public_host() -> None:
    stop = threading.Event()
    out = io.StringIO()
    result: list[int] = []
    thread = threading.Thread(
        target=lambda: result.append(
            cli_main(["--port", "0", "--flavor", "newapi", "--duration", "1"], stop=stop, out=out)
        )
    )
    thread.start()
    deadline = time.monotonic() + 5
    while "AIRFLOW_CONN_MIDJOURNEY_DEFAULT=" not in out.getvalue():
        assert time.monotonic() < deadline
        time.sleep(0.02)
    url = out.getvalue().splitlines()[0].rsplit(" ", 1)[1]
    assert requests.get(f"{url}/mj/task/1/fetch", headers=BEARER, timeout=5).status_code == 400
    stop.set()
    thread.join(5)
    assert not thread.is_alive()
    assert result == [0]
    with pytest.raises(SystemExit) as excinfo:
        cli_main(["--host", "0.0.0.0"], stop=threading.Event(), out=io.StringIO())
    assert excinfo.value.code == 2


def test_cli_subprocess_stops_on_sigterm() -> None:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    cmd = [sys.executable, "-m", "airflow_provider_mjvideo.testing.cli", "--port", "0", "--auth-style", "raw"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()
        conn_line = proc.stdout.readline()
        url = first.strip().rsplit(" ", 1)[1]
        assert conn_line.startswith("AIRFLOW_CONN_MIDJOURNEY_DEFAULT=")
        conn = json.loads(conn_line.split("=", 1)[1].strip().strip("'"))
        assert conn["host"] == url
        assert conn["extra"] == {"auth_style": "raw"}
        ok = requests.get(f"{url}/mj/task/1/fetch", headers={"Authorization": "emulator-key"}, timeout=5)
        assert ok.status_code == 200
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)
