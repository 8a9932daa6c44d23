"""
Saving pictures: a grid, an upscaled image, beside the clips, with DownloadVideoOperator / save_task_clips, against
the emulator's image pipeline over real HTTP (its pictures are real PNGs on its fake CDN).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
from helpers import SECRET_KEY
from helpers.emulator_api import accepted_id, fetch, finished_grid, post, press
from helpers.pictures import PICTURES
from helpers.scripted_http import Answer, ScriptedServer

from airflow_provider_mjvideo.exceptions import (
    MidjourneyMediaContentError,
    MidjourneyMediaUnavailableError,
    MidjourneyTaskFailedError,
    MidjourneyTaskNotReadyError,
    MidjourneyValidationError,
)
from airflow_provider_mjvideo.media_types import image_type_from_name
from airflow_provider_mjvideo.operators.video import DownloadVideoOperator
from airflow_provider_mjvideo.retrying import RetryPolicy
from airflow_provider_mjvideo.storage import (
    GALLERY_NAME,
    MANIFEST_NAME,
    TASK_MANIFESTS_DIR,
    XCOM_KEYS,
    MediaDownloader,
    group_by_task,
    picture_filename,
    resolve_destination,
    save_task_clips,
)
from airflow_provider_mjvideo.testing import MidjourneyEmulator, media

PROMPT = "a red fox in the snow"


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def grid_id(emulator: MidjourneyEmulator) -> str:
    """Imagine, forced finished at once: the task id of a grid."""
    return finished_grid(emulator, prompt=PROMPT)["id"]


def upscale_id(emulator: MidjourneyEmulator, label: str = "U2") -> str:
    """Imagine, upscale with ``label``, both forced finished: the upscale's task id."""
    task_id = accepted_id(press(emulator, finished_grid(emulator, prompt=PROMPT), label))
    emulator.complete_task(task_id)
    return task_id


def entries(folder: Path) -> list[dict[str, Any]]:
    return json.loads((folder / MANIFEST_NAME).read_text())["clips"]


# --------------------------------------------------------------------------- a grid, an upscale


@pytest.mark.parametrize(
    ("flavor", "pictures"),
    [
        # trueai lists the grid's four single images beside it (imageUrls); other servers give the grid alone.
        ("trueai", [media.grid_png(), *(media.image_png(i) for i in range(4))]),
        ("novicezk", [media.grid_png()]),
        ("newapi", [media.grid_png()]),
    ],
)
def test_a_grid_is_saved_with_every_picture_its_server_lists(hook, emulator, tmp_path, flavor, pictures):
    emulator.config.flavor = flavor
    task_id = grid_id(emulator)
    out = tmp_path / "pictures"

    saved = save_task_clips(hook, task_id, f"file://{out}/")

    names = [f"{task_id}_image{i}.png" for i in range(len(pictures))]
    urls = [f"{emulator.root_url}/media/{task_id}/grid.png"] + [
        f"{emulator.root_url}/media/{task_id}/{i}.png" for i in range(len(pictures) - 1)
    ]
    assert [clip.xcom() for clip in saved] == [
        {"index": i, "url": urls[i], "path": f"file://{out}/{names[i]}", "bytes": len(data), "sha256": sha(data)}
        for i, data in enumerate(pictures)
    ]
    assert all(tuple(clip.xcom()) == XCOM_KEYS for clip in saved)
    for name, data in zip(names, pictures, strict=True):
        assert (out / name).read_bytes() == data
    assert emulator.count("media") == len(pictures)
    assert [
        (e["mj_task_id"], e["index"], e["kind"], e["action"], e["file"], e["content_type"]) for e in entries(out)
    ] == [(task_id, i, "image", "IMAGINE", names[i], "image/png") for i in range(len(pictures))]

    gallery = (out / GALLERY_NAME).read_text()
    assert gallery.count("<img ") == len(pictures)
    assert "<video" not in gallery
    for name in names:
        assert f'<img src="{name}"' in gallery
    assert f"{len(pictures)} picture{'s' if len(pictures) > 1 else ''} of 1 task" in gallery
    assert "<title>Midjourney clips and pictures</title>" in gallery
    assert SECRET_KEY not in gallery + (out / MANIFEST_NAME).read_text()


def test_from_words_to_clips_the_grid_the_upscale_and_the_clips_share_one_gallery(hook, emulator, tmp_path):
    """The example's path: imagine → upscale → video from the upscaled image; all saved into one folder."""
    grid = grid_id(emulator)
    upscale = upscale_id(emulator)
    picture = fetch(emulator, upscale)["imageUrl"]
    video = hook.submit_video(PROMPT, picture, "low", extra_body={"batchSize": 2})
    emulator.complete_task(video)
    folder = f"file://{tmp_path}/"

    grid_saved = save_task_clips(hook, grid, folder, [0])  # the grid alone, not its single images
    (upscale_saved,) = save_task_clips(hook, upscale, folder)
    clips = save_task_clips(hook, video, folder)

    assert (tmp_path / f"{grid}_image0.png").read_bytes() == media.grid_png()
    assert (tmp_path / f"{upscale}_image0.png").read_bytes() == media.image_png(1)  # U2: the second quadrant
    assert upscale_saved.xcom()["url"] == picture
    assert [clip.xcom()["path"] for clip in grid_saved + clips] == [
        f"{folder}{grid}_image0.png",
        f"{folder}{video}_0.mp4",
        f"{folder}{video}_1.mp4",
    ]
    assert [(e["mj_task_id"], e["kind"], e["action"]) for e in entries(tmp_path)] == [
        (grid, "image", "IMAGINE"),
        (upscale, "image", "UPSCALE"),
        (video, "video", "VIDEO"),
        (video, "video", "VIDEO"),
    ]

    gallery = (tmp_path / GALLERY_NAME).read_text()
    assert (gallery.count("<img "), gallery.count("<video controls")) == (2, 2)
    assert "2 clips and 2 pictures of 3 tasks" in gallery
    sections = [gallery.index(f"<code>{task}</code>") for task in (grid, upscale, video)]
    assert sections == sorted(sections)  # one section per task, in the order they were saved
    assert f"<h2>IMAGINE <code>{grid}</code> · 1 picture</h2>" in gallery
    assert f"<h2>UPSCALE <code>{upscale}</code> · 1 picture</h2>" in gallery
    assert f"<h2>VIDEO <code>{video}</code> · 2 clips</h2>" in gallery
    upscale_section = gallery[sections[1] : sections[2]]
    assert f'<img src="{upscale}_image0.png"' in upscale_section
    assert "<dt>picture</dt><dd>0</dd>" in upscale_section
    assert f'src="{video}_1.mp4#t=0.1"' in gallery[sections[2] :]


def test_saved_pictures_are_reused_by_size_and_sha256(hook, emulator, tmp_path):
    task_id = grid_id(emulator)  # trueai: five pictures
    first = [clip.xcom() for clip in save_task_clips(hook, task_id, str(tmp_path))]
    assert emulator.count("media") == 5

    again = save_task_clips(hook, task_id, str(tmp_path))
    assert [clip.xcom() for clip in again] == first
    assert not any(clip.downloaded for clip in again)
    assert emulator.count("media") == 5

    damaged = tmp_path / f"{task_id}_image3.png"
    damaged.write_bytes(b"\0" * damaged.stat().st_size)
    third = save_task_clips(hook, task_id, str(tmp_path))
    assert [clip.downloaded for clip in third] == [False, False, False, True, False]
    assert damaged.read_bytes() == media.image_png(2)
    assert emulator.count("media") == 6

    save_task_clips(hook, task_id, str(tmp_path), overwrite=True)
    assert emulator.count("media") == 11
    assert [p.name for p in tmp_path.iterdir() if ".part-" in p.name] == []


def test_indexes_pick_pictures_by_position(hook, emulator, tmp_path):
    task_id = grid_id(emulator)
    saved = save_task_clips(hook, task_id, str(tmp_path), [3, 0])
    assert [(clip.xcom()["index"], clip.entry["file"]) for clip in saved] == [
        (3, f"{task_id}_image3.png"),
        (0, f"{task_id}_image0.png"),
    ]
    assert (tmp_path / f"{task_id}_image3.png").read_bytes() == media.image_png(2)  # picture 3: the third single
    assert emulator.count("media") == 2

    emulator.config.flavor = "novicezk"
    single = upscale_id(emulator)
    with pytest.raises(MidjourneyValidationError, match=r"has 1 picture\(s\) \(indexes 0-0\); there is no picture 1"):
        save_task_clips(hook, single, str(tmp_path), [0, 1])
    assert emulator.count("media") == 2


def test_an_image_task_without_its_picture_is_not_ready_and_a_failed_one_fails(hook, emulator, tmp_path):
    emulator.config.image_duration = 60
    emulator.config.urls_after_success = 60  # once SUCCESS, a minute before the picture is published
    running = accepted_id(post(emulator, "imagine", prompt=PROMPT))
    with pytest.raises(MidjourneyTaskNotReadyError, match="not finished"):
        save_task_clips(hook, running, str(tmp_path))

    emulator.complete_task(running)
    with pytest.raises(MidjourneyTaskNotReadyError, match=r"is SUCCESS but has no picture \(imageUrl\) yet"):
        save_task_clips(hook, running, str(tmp_path))

    failed = accepted_id(post(emulator, "imagine", prompt=PROMPT))
    emulator.fail_task(failed, "Job failed: moderation")
    with pytest.raises(MidjourneyTaskFailedError, match="ended FAILURE: Job failed: moderation; it has no pictures"):
        save_task_clips(hook, failed, str(tmp_path))
    assert emulator.count("media") == 0


@pytest.mark.parametrize("status", [404, 410])
def test_a_refused_picture_is_named_in_the_error(hook, emulator, tmp_path, status):
    task_id = upscale_id(emulator)
    emulator.config.media_status = {f"{task_id}/0": status}
    with pytest.raises(MidjourneyMediaUnavailableError, match=f"picture 0 of task {task_id}.*HTTP {status}") as info:
        save_task_clips(hook, task_id, str(tmp_path))
    assert (info.value.index, info.value.http_status) == (0, status)
    assert not (tmp_path / f"{task_id}_image0.png").exists()


def test_clips_saved_before_pictures_existed_stay_videos_beside_new_pictures(hook, emulator, tmp_path):
    video = hook.submit_video(PROMPT, "https://cdn.example/first.png", "low", extra_body={"batchSize": 1})
    emulator.complete_task(video)
    save_task_clips(hook, video, str(tmp_path))
    # What earlier versions wrote: entries without "kind" (nor "action").
    for manifest in [tmp_path / MANIFEST_NAME, *(tmp_path / TASK_MANIFESTS_DIR).iterdir()]:
        document = json.loads(manifest.read_text())
        document["clips"] = [{k: v for k, v in e.items() if k not in ("kind", "action")} for e in document["clips"]]
        manifest.write_text(json.dumps(document))

    save_task_clips(hook, upscale_id(emulator), str(tmp_path))

    gallery = (tmp_path / GALLERY_NAME).read_text()
    assert (gallery.count("<video controls"), gallery.count("<img ")) == (1, 1)
    assert f'src="{video}_0.mp4#t=0.1"' in gallery
    assert f"<h2>VIDEO <code>{video}</code> · 1 clip</h2>" in gallery


def test_pictures_go_to_other_object_stores_too(hook, emulator, memory_store):
    task_id = upscale_id(emulator)
    (saved,) = save_task_clips(hook, task_id, "memory://mjtest@bucket/out/")
    assert memory_store.cat_file(f"/bucket/out/{task_id}_image0.png") == media.image_png(1)
    assert saved.xcom()["sha256"] == sha(media.image_png(1))
    save_task_clips(hook, task_id, "memory://mjtest@bucket/out/")
    assert emulator.count("media") == 1


def test_the_operator_saves_an_upscale_from_its_sensor_summary(hook, emulator, tmp_path):
    task_id = upscale_id(emulator)
    summary = hook.get_task(task_id).to_summary()
    operator = DownloadVideoOperator(task_id="save", mj_task_id=summary, destination=f"file://{tmp_path}/")
    assert operator.execute({}) == [
        {
            "index": 0,
            "url": f"{emulator.root_url}/media/{task_id}/0.png",
            "path": f"file://{tmp_path}/{task_id}_image0.png",
            "bytes": len(media.image_png(1)),
            "sha256": sha(media.image_png(1)),
        }
    ]


# --------------------------------------------------------------------------- what a media server sends


@pytest.fixture
def picture_server():
    server = ScriptedServer().start()
    try:
        yield server
    finally:
        server.stop()


# (id, Content-Type, body, the file a picture at a URL without extension is saved as)
SERVED = [
    ("png", "image/png", PICTURES["png"], "1_image0.png"),
    ("jpeg", "image/jpeg; charset=binary", PICTURES["jpeg"], "1_image0.jpg"),
    ("webp-generic", "application/octet-stream", PICTURES["webp"], "1_image0.webp"),
    ("gif-no-type", "", PICTURES["gif"], "1_image0.gif"),
    ("png-binary", "binary/octet-stream", PICTURES["png"], "1_image0.png"),
]


@pytest.mark.parametrize(("content_type", "body", "name"), [c[1:] for c in SERVED], ids=[c[0] for c in SERVED])
def test_a_picture_url_without_extension_is_named_from_its_bytes(picture_server, tmp_path, content_type, body, name):
    seen: list[dict[str, str]] = []

    def answer(headers: dict[str, str]) -> Answer:
        seen.append(headers)
        return Answer(200, body, {"Content-Type": content_type})

    picture_server.answer = answer
    folder = resolve_destination(str(tmp_path))
    result = MediaDownloader(retry_policy=RetryPolicy(1, 0.01, 0.02)).download(
        f"{picture_server.url}/p/abc",
        lambda found: folder / picture_filename("1", 0, found),
        what="picture 0 of task 1",
        expect="image",
    )
    assert result.path is not None
    assert (result.path.name, result.bytes, result.sha256) == (name, len(body), sha(body))
    assert (tmp_path / name).read_bytes() == body
    assert seen[0]["accept"] == "image/*, application/octet-stream;q=0.8"


@pytest.mark.parametrize(
    ("content_type", "body", "message"),
    [
        ("text/html", b"<html>expired</html>", "Content-Type 'text/html', not a picture"),
        ("video/mp4", PICTURES["png"], "Content-Type 'video/mp4', not a picture"),
        ("application/octet-stream", b"<!DOCTYPE html><html>expired</html>", "it is an HTML page, not a PNG"),
        ("", media.clip_bytes(0), "it is an MP4/QuickTime video, not a PNG, JPEG, WebP or GIF picture"),
    ],
)
def test_what_is_not_a_picture_is_refused_and_leaves_no_file(picture_server, tmp_path, content_type, body, message):
    picture_server.answer = Answer(200, body, {"Content-Type": content_type})
    folder = resolve_destination(str(tmp_path / "out"))
    with pytest.raises(MidjourneyMediaContentError, match=message):
        MediaDownloader(retry_policy=RetryPolicy(1, 0.01, 0.02)).download(
            f"{picture_server.url}/p/abc.png", folder / "1_image0.png", what="picture 0 of task 1", expect="image"
        )
    assert not (tmp_path / "out").exists() or list((tmp_path / "out").iterdir()) == []


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://cdn.midjourney.com/abc/0_0.png", "png"),
        ("https://cdn.midjourney.com/abc/grid_0.webp?ex=65f", "webp"),
        ("https://cdn.discordapp.com/a/b/c.JPEG?ex=1&is=2", "jpeg"),
        ("https://cdn.example/c.jpg", "jpeg"),
        ("https://cdn.example/c.gif#frag", "gif"),
        ("https://cdn.example/c", None),
        ("https://cdn.example/c.mp4", None),
        ("https://cdn.example/c.png/download", None),
    ],
)
def test_the_type_a_picture_url_names(url, expected):
    assert image_type_from_name(url) == expected


@pytest.mark.parametrize(
    ("image_type", "name"),
    [
        ("png", "7_image2.png"),
        ("jpeg", "7_image2.jpg"),
        ("webp", "7_image2.webp"),
        ("gif", "7_image2.gif"),
        (None, "7_image2.png"),
    ],
)
def test_picture_file_names(image_type, name):
    assert picture_filename("7", 2, image_type) == name


def test_the_gallery_groups_per_task_in_the_order_they_were_saved():
    def entry(task: str, index: int, saved_at: str | None) -> dict[str, Any]:
        return {"mj_task_id": task, "index": index, **({"saved_at": saved_at} if saved_at else {})}

    # manifest.json order: by task id, then index.
    listed = [
        entry("1700000000000001", 0, "2026-03-04T10:00:05+00:00"),
        entry("1700000000000001", 1, "2026-03-04T10:00:05+00:00"),
        entry("1700000000000003", 0, "2026-03-04T10:00:01+00:00"),
        entry("1700000000000005", 0, "2026-03-04T10:00:01+00:00"),
        entry("999", 0, "2026-03-04T10:00:01+00:00"),
        entry("1700000000000007", 0, None),  # saved by a version that did not record when
    ]
    groups = group_by_task(listed)
    assert [[(e["mj_task_id"], e["index"]) for e in group] for group in groups] == [
        [("1700000000000007", 0)],
        [("999", 0)],  # same second as the next two: by id, as a number (shorter ids were handed out earlier)
        [("1700000000000003", 0)],
        [("1700000000000005", 0)],
        [("1700000000000001", 0), ("1700000000000001", 1)],
    ]
