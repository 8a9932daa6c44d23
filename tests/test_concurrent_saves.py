"""Saves of different tasks into one folder at the same time: nobody's clips go missing from the folder's views."""

from __future__ import annotations

import itertools
import json
import shutil
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from airflow_provider_mjvideo.hooks.midjourney import MidjourneyHook
from airflow_provider_mjvideo.storage import (
    GALLERY_NAME,
    MANIFEST_NAME,
    TASK_MANIFESTS_DIR,
    folder,
    resolve_destination,
    save_task_clips,
)
from airflow_provider_mjvideo.testing import MidjourneyEmulator, media

IMAGE = "https://cdn.example.com/first-frame.png"
#: Saves running at once in the stress test (each of a task with 4 clips).
SAVES = 20


@pytest.fixture
def finished_tasks(hook: MidjourneyHook, emulator: MidjourneyEmulator):
    """``finished_tasks(n, batch_size=4)``: submit ``n`` videos and force them to SUCCESS; return their ids."""

    def submit(count: int, batch_size: int = 4) -> list[str]:
        ids = []
        for number in range(count):
            task_id = hook.submit_video(f"shot {number}", IMAGE, "low", extra_body={"batchSize": batch_size})
            emulator.complete_task(task_id)
            ids.append(task_id)
        return ids

    return submit


@pytest.fixture
def new_hook(mj_conn: str):
    """``new_hook()``: one more hook on the emulator, for a thread of its own (as each Airflow task has)."""
    return lambda: MidjourneyHook(mj_conn, retry_delay=0.01, retry_max_delay=0.05)


def clips_listed(directory: Path) -> list[tuple[str, int]]:
    return [(c["mj_task_id"], c["index"]) for c in json.loads((directory / MANIFEST_NAME).read_text())["clips"]]


def gallery_clips(directory: Path) -> int:
    return (directory / GALLERY_NAME).read_text().count("<video controls")


def test_twenty_saves_of_different_tasks_into_one_folder_at_once_lose_no_clip(finished_tasks, new_hook, tmp_path):
    task_ids = finished_tasks(SAVES)
    start = threading.Barrier(SAVES)

    def save(task_id: str) -> list[dict]:
        hook = new_hook()
        start.wait(timeout=30)  # every save starts together: their downloads and rebuilds overlap
        return [clip.xcom() for clip in save_task_clips(hook, task_id, f"file://{tmp_path}/")]

    with ThreadPoolExecutor(max_workers=SAVES) as pool:
        returned = dict(zip(task_ids, pool.map(save, task_ids), strict=True))

    every_clip = sorted((task_id, index) for task_id in task_ids for index in range(4))
    assert clips_listed(tmp_path) == every_clip
    assert gallery_clips(tmp_path) == len(every_clip)
    gallery = (tmp_path / GALLERY_NAME).read_text()
    assert all(f'src="{task_id}_{index}.mp4#t=0.1"' in gallery for task_id, index in every_clip)
    assert sorted(p.name for p in (tmp_path / TASK_MANIFESTS_DIR).iterdir()) == sorted(f"{t}.json" for t in task_ids)
    for task_id in task_ids:
        own = json.loads((tmp_path / TASK_MANIFESTS_DIR / f"{task_id}.json").read_text())["clips"]
        assert [(c["index"], c["bytes"], c["sha256"]) for c in own] == [
            (c["index"], c["bytes"], c["sha256"]) for c in returned[task_id]
        ]
        for index in range(4):
            assert (tmp_path / f"{task_id}_{index}.mp4").read_bytes() == media.clip_bytes(index)
    assert [p.name for p in tmp_path.rglob("*") if ".part-" in p.name] == []


def test_a_view_written_from_a_stale_read_is_repaired_by_its_own_writer(
    finished_tasks, hook, new_hook, tmp_path, monkeypatch
):
    """The worst interleaving, forced: the first save reads the folder, the second saves completely, then the first
    writes the views from its old read (without the second's clips). It must read again and write them again."""
    first, second = finished_tasks(2, batch_size=2)
    real_collect = folder.collect_entries
    stale_reads: list[list[tuple[str, int]]] = []
    first_has_read, second_has_saved = threading.Event(), threading.Event()

    def collect_then_pause_the_first_save(directory):
        entries = real_collect(directory)
        if threading.current_thread().name.startswith("first-save") and not stale_reads:
            stale_reads.append([(e["mj_task_id"], e["index"]) for e in entries])
            first_has_read.set()
            second_has_saved.wait(timeout=30)
        return entries

    monkeypatch.setattr(folder, "collect_entries", collect_then_pause_the_first_save)
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="first-save") as pool:
        first_save = pool.submit(lambda: save_task_clips(new_hook(), first, str(tmp_path)))
        assert first_has_read.wait(timeout=30)
        save_task_clips(hook, second, str(tmp_path))
        after_second = clips_listed(tmp_path)
        second_has_saved.set()
        first_save.result(timeout=30)

    assert stale_reads == [[(first, 0), (first, 1)]]  # the first save's read really missed the second's clips
    assert after_second == [(first, 0), (first, 1), (second, 0), (second, 1)]
    assert clips_listed(tmp_path) == after_second
    assert gallery_clips(tmp_path) == 4


def test_a_folder_saved_before_per_task_manifests_keeps_its_clips_and_they_are_reused(
    finished_tasks, hook, emulator, tmp_path
):
    old, new = finished_tasks(2, batch_size=2)
    save_task_clips(hook, old, str(tmp_path))
    # Without manifests/ the folder is what earlier versions wrote: the clips, manifest.json and index.html.
    shutil.rmtree(tmp_path / TASK_MANIFESTS_DIR)
    assert emulator.count("media") == 2

    save_task_clips(hook, new, str(tmp_path))
    assert clips_listed(tmp_path) == [(old, 0), (old, 1), (new, 0), (new, 1)]
    assert gallery_clips(tmp_path) == 4
    assert not (tmp_path / TASK_MANIFESTS_DIR / f"{old}.json").exists()

    again = save_task_clips(hook, old, str(tmp_path))
    assert [clip.downloaded for clip in again] == [False, False]  # reused from the old manifest.json's entries
    assert emulator.count("media") == 4
    assert (tmp_path / TASK_MANIFESTS_DIR / f"{old}.json").exists()
    assert clips_listed(tmp_path) == [(old, 0), (old, 1), (new, 0), (new, 1)]


def test_a_task_saved_again_with_other_indexes_keeps_its_earlier_clips(finished_tasks, hook, tmp_path):
    (task_id,) = finished_tasks(1)
    save_task_clips(hook, task_id, str(tmp_path), [3])
    save_task_clips(hook, task_id, str(tmp_path), [0, 1])
    assert clips_listed(tmp_path) == [(task_id, 0), (task_id, 1), (task_id, 3)]
    own = json.loads((tmp_path / TASK_MANIFESTS_DIR / f"{task_id}.json").read_text())["clips"]
    assert [c["index"] for c in own] == [0, 1, 3]


def test_a_folder_that_never_stops_changing_is_rebuilt_a_bounded_number_of_times(tmp_path, monkeypatch, caplog):
    reads = itertools.count()
    monkeypatch.setattr(
        folder, "collect_entries", lambda directory: [{"mj_task_id": "1", "index": 0, "read": next(reads)}]
    )

    written = folder.rebuild_folder(resolve_destination(str(tmp_path)), max_rebuilds=3)

    assert next(reads) == 4  # the first read, then one after each of the 3 writes
    assert written == [{"mj_task_id": "1", "index": 0, "read": 2}]  # the last one written, not the unwritten read
    assert json.loads((tmp_path / MANIFEST_NAME).read_text())["clips"] == written
    assert "kept changing during 3 rebuilds" in caplog.text
