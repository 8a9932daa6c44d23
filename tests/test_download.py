"""DownloadVideoOperator and the storage module against the emulator's real MP4 bytes, over real HTTP."""

from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import pendulum
import pytest
import requests_mock
from helpers import REPO, SECRET_KEY, connection_json
from helpers.dag_runs import xcom_value, xcoms

from airflow_provider_mjvideo.exceptions import (
    MidjourneyConfigurationError,
    MidjourneyDownloadError,
    MidjourneyMediaContentError,
    MidjourneyMediaTooLargeError,
    MidjourneyMediaUnavailableError,
    MidjourneyPermanentError,
    MidjourneyTaskFailedError,
    MidjourneyTaskNotReadyError,
    MidjourneyTransientError,
    MidjourneyValidationError,
)
from airflow_provider_mjvideo.hooks.midjourney import MidjourneyHook
from airflow_provider_mjvideo.operators.video import DownloadVideoOperator
from airflow_provider_mjvideo.retrying import RetryPolicy
from airflow_provider_mjvideo.storage import (
    GALLERY_NAME,
    MANIFEST_NAME,
    TASK_MANIFESTS_DIR,
    MediaDownloader,
    resolve_destination,
    same_origin,
    save_task_clips,
)
from airflow_provider_mjvideo.testing import MidjourneyEmulator, media
from airflow_provider_mjvideo.validation import check_indexes

IMAGE = "https://cdn.example.com/first-frame.png"
PROMPT = "a paper boat drifting down a rainy street"
FAST_RETRIES = RetryPolicy(3, 0.01, 0.02)
MB = 1 << 20


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def finished_task(hook: MidjourneyHook, emulator: MidjourneyEmulator, batch_size: int | None = None) -> str:
    """Submit a video and force it to SUCCESS at once (its clip URLs are published immediately)."""
    extra = {"batchSize": batch_size} if batch_size else None
    task_id = hook.submit_video(PROMPT, IMAGE, "low", extra_body=extra)
    emulator.complete_task(task_id)
    return task_id


def fast_downloader(hook: MidjourneyHook, **kwargs: Any) -> MediaDownloader:
    return MediaDownloader.for_hook(hook, retry_policy=FAST_RETRIES, **kwargs)


def leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if ".part-" in p.name)


# ------------------------------------------------------------------------------------------ happy path


def test_saves_every_clip_byte_identical_with_manifest_and_gallery(hook, emulator, tmp_path):
    task_id = finished_task(hook, emulator)
    out = tmp_path / "videos"

    saved = save_task_clips(hook, task_id, f"file://{out}/")

    expected = [media.clip_bytes(i) for i in range(4)]
    manifest = [clip.xcom() for clip in saved]
    assert manifest == [
        {
            "index": i,
            "url": f"{emulator.root_url}/media/{task_id}/{i}.mp4",
            "path": f"file://{out}/{task_id}_{i}.mp4",
            "bytes": len(expected[i]),
            "sha256": sha(expected[i]),
        }
        for i in range(4)
    ]
    for i in range(4):
        assert (out / f"{task_id}_{i}.mp4").read_bytes() == expected[i]
    assert all(clip.downloaded for clip in saved)
    assert emulator.count("media") == 4
    assert sorted(p.name for p in out.iterdir()) == sorted(
        [GALLERY_NAME, MANIFEST_NAME, TASK_MANIFESTS_DIR, *(f"{task_id}_{i}.mp4" for i in range(4))]
    )
    assert [p.name for p in (out / TASK_MANIFESTS_DIR).iterdir()] == [f"{task_id}.json"]

    document = json.loads((out / MANIFEST_NAME).read_text())
    # The task's own manifest and the folder's merged one are the same document while the folder holds one task.
    assert json.loads((out / TASK_MANIFESTS_DIR / f"{task_id}.json").read_text())["clips"] == document["clips"]
    assert document["version"] == 1
    assert [(c["mj_task_id"], c["index"], c["file"], c["bytes"], c["sha256"]) for c in document["clips"]] == [
        (task_id, i, f"{task_id}_{i}.mp4", len(expected[i]), sha(expected[i])) for i in range(4)
    ]
    assert {c["prompt"] for c in document["clips"]} == {PROMPT}
    assert {c["content_type"] for c in document["clips"]} == {"video/mp4"}

    gallery = (out / GALLERY_NAME).read_text()
    assert gallery.count("<video controls") == 4
    for i in range(4):
        assert f'src="{task_id}_{i}.mp4#t=0.1"' in gallery
        assert f"<dt>clip</dt><dd>{i}</dd>" in gallery
        assert f"({len(expected[i]):,} bytes)" in gallery
    assert gallery.count(PROMPT) == 4
    assert gallery.count(f"<dd>{task_id}</dd>") == 4
    for text in (gallery, json.dumps(document), json.dumps(manifest)):
        assert SECRET_KEY not in text


def test_second_run_reuses_identical_files_without_any_media_request(hook, emulator, tmp_path):
    task_id = finished_task(hook, emulator)
    destination = f"file://{tmp_path}/"
    first = [clip.xcom() for clip in save_task_clips(hook, task_id, destination)]
    assert emulator.count("media") == 4
    mtimes = {p.name: p.stat().st_mtime_ns for p in tmp_path.glob("*.mp4")}

    second = save_task_clips(hook, task_id, destination)

    assert emulator.count("media") == 4  # nothing downloaded
    assert [clip.xcom() for clip in second] == first
    assert not any(clip.downloaded for clip in second)
    assert {p.name: p.stat().st_mtime_ns for p in tmp_path.glob("*.mp4")} == mtimes

    # A file changed on disk (same size) no longer matches its manifest entry: only it is fetched again.
    damaged = tmp_path / f"{task_id}_2.mp4"
    damaged.write_bytes(b"\0" * damaged.stat().st_size)
    third = save_task_clips(hook, task_id, destination)
    assert emulator.count("media") == 5
    assert [clip.downloaded for clip in third] == [False, False, True, False]
    assert damaged.read_bytes() == media.clip_bytes(2)

    # overwrite=True downloads everything again.
    save_task_clips(hook, task_id, destination, overwrite=True)
    assert emulator.count("media") == 9
    assert leftovers(tmp_path) == []


def test_indexes_pick_clips_in_order_and_bad_indexes_fail_before_any_media_request(hook, emulator, tmp_path):
    task_id = finished_task(hook, emulator)
    saved = save_task_clips(hook, task_id, str(tmp_path), [3, 1])
    assert [(c.xcom()["index"], c.xcom()["bytes"]) for c in saved] == [(3, 1884), (1, 1897)]
    assert sorted(p.name for p in tmp_path.glob("*.mp4")) == [f"{task_id}_1.mp4", f"{task_id}_3.mp4"]
    assert emulator.count("media") == 2

    two_clips = finished_task(hook, emulator, batch_size=2)
    with pytest.raises(MidjourneyValidationError, match=r"has 2 clip\(s\).*no clip 3") as info:
        save_task_clips(hook, two_clips, str(tmp_path), [0, 3])
    assert info.value.parameter == "indexes"
    assert emulator.count("media") == 2


def test_manifest_keeps_clips_of_other_tasks_in_the_same_destination(hook, emulator, tmp_path):
    first = finished_task(hook, emulator)
    second = finished_task(hook, emulator, batch_size=2)
    save_task_clips(hook, first, str(tmp_path), [0])
    save_task_clips(hook, second, str(tmp_path))
    clips = json.loads((tmp_path / MANIFEST_NAME).read_text())["clips"]
    assert [(c["mj_task_id"], c["index"]) for c in clips] == [(first, 0), (second, 0), (second, 1)]
    assert (tmp_path / GALLERY_NAME).read_text().count("<video controls") == 3


def test_generic_binary_content_type_is_accepted_when_the_bytes_are_a_video(hook, emulator, tmp_path):
    task_id = finished_task(hook, emulator, batch_size=1)
    emulator.config.media_content_type = "application/octet-stream"
    (clip,) = save_task_clips(hook, task_id, str(tmp_path))
    assert clip.entry["content_type"] == "application/octet-stream"
    assert (tmp_path / f"{task_id}_0.mp4").read_bytes() == media.clip_bytes(0)


def test_other_object_stores_work_through_the_filesystem_interface(hook, emulator, monkeypatch):
    """A non-local store (fsspec's memory filesystem attached the way providers attach s3/gcs)."""
    from airflow.sdk.io import store as store_module
    from fsspec.implementations.memory import MemoryFileSystem

    memory = MemoryFileSystem()
    # What attach(protocol="memory", conn_id="mjtest", fs=memory) does, undone after the test.
    monkeypatch.setitem(
        store_module._STORE_CACHE, "memory-mjtest", store_module.ObjectStore("memory", "mjtest", memory)
    )
    task_id = finished_task(hook, emulator, batch_size=2)
    try:
        saved = save_task_clips(hook, task_id, "memory://mjtest@bucket/clips/")
        for i, clip in enumerate(saved):
            assert memory.cat_file(f"/bucket/clips/{task_id}_{i}.mp4") == media.clip_bytes(i)
            assert clip.xcom()["sha256"] == sha(media.clip_bytes(i))
        assert not [name for name in memory.find("/bucket/clips") if ".part-" in name]
        save_task_clips(hook, task_id, "memory://mjtest@bucket/clips/")
        assert emulator.count("media") == 2
    finally:
        for name in memory.find("/bucket"):
            memory.rm(name)


# ------------------------------------------------------------------------------------------ the API key


def test_key_goes_only_to_the_api_origin(hook, emulator, tmp_path):
    task_id = finished_task(hook, emulator, batch_size=1)
    save_task_clips(hook, task_id, str(tmp_path / "same"))
    (same,) = emulator.requests_to("media")
    assert same.headers["authorization"] == f"Bearer {SECRET_KEY}"

    emulator.config.media_host = "localhost"  # clips now on another origin, like a CDN
    (clip,) = save_task_clips(hook, task_id, str(tmp_path / "cdn"))
    assert clip.xcom()["url"].startswith("http://localhost:")
    other = emulator.requests_to("media")[-1]
    assert "authorization" not in other.headers
    assert "mj-api-secret" not in other.headers
    assert all(SECRET_KEY not in value for value in other.headers.values())
    assert (tmp_path / "cdn" / f"{task_id}_0.mp4").read_bytes() == media.clip_bytes(0)


def test_redirect_to_another_host_drops_the_key(tmp_path):
    downloader = MediaDownloader(
        auth_base_url="https://api.example.com/api",
        auth_headers={"mj-api-secret": SECRET_KEY},
        retry_policy=FAST_RETRIES,
    )
    body = media.clip_bytes(1)
    with requests_mock.Mocker() as mock:
        mock.get(
            "https://api.example.com/media/1.mp4", status_code=302, headers={"Location": "https://cdn.test/c/1.mp4"}
        )
        mock.get("https://cdn.test/c/1.mp4", content=body, headers={"Content-Type": "video/mp4"})
        result = downloader.download(
            "https://api.example.com/media/1.mp4", resolve_destination(str(tmp_path)) / "new" / "a.mp4"
        )
        first, second = mock.request_history
    assert first.headers["mj-api-secret"] == SECRET_KEY
    assert "mj-api-secret" not in second.headers
    assert "Authorization" not in second.headers
    assert (result.bytes, result.sha256) == (len(body), sha(body))
    assert (tmp_path / "new" / "a.mp4").read_bytes() == body


@pytest.mark.parametrize(
    ("url", "other", "same"),
    [
        ("http://127.0.0.1:8080/media/1.mp4", "http://127.0.0.1:8080/api", True),
        ("https://api.example.com/x", "https://API.example.com:443/", True),
        ("http://api.example.com/x", "https://api.example.com/", False),
        ("https://cdn.example.com/x", "https://api.example.com/", False),
        ("https://api.example.com:8443/x", "https://api.example.com/", False),
        ("https://api.example.com.evil.test/x", "https://api.example.com/", False),
    ],
)
def test_same_origin(url, other, same):
    assert same_origin(url, other) is same


# ------------------------------------------------------------------------------------------ errors


@pytest.mark.parametrize("status", [403, 404, 410])
def test_refused_clip_is_a_permanent_error_naming_clip_and_status(hook, emulator, tmp_path, status):
    task_id = finished_task(hook, emulator)
    emulator.config.media_status = {f"{task_id}/1": status}
    with pytest.raises(MidjourneyMediaUnavailableError) as info:
        save_task_clips(hook, task_id, str(tmp_path), downloader=fast_downloader(hook))
    error = info.value
    assert isinstance(error, MidjourneyPermanentError)
    assert (error.index, error.http_status) == (1, status)
    assert f"clip 1 of task {task_id}" in str(error)
    assert f"HTTP {status}" in str(error)
    assert "expired" in str(error)
    assert [r.path for r in emulator.requests_to("media")] == [f"/media/{task_id}/0.mp4", f"/media/{task_id}/1.mp4"]
    assert not (tmp_path / f"{task_id}_1.mp4").exists()
    assert leftovers(tmp_path) == []


def test_wrong_content_type_is_refused(hook, emulator, tmp_path):
    task_id = finished_task(hook, emulator, batch_size=1)
    emulator.config.media_content_type = "text/html; charset=utf-8"
    with pytest.raises(MidjourneyMediaContentError, match=r"clip 0 of task .*Content-Type 'text/html', not a video"):
        save_task_clips(hook, task_id, str(tmp_path))
    assert emulator.count("media") == 1
    assert list(tmp_path.iterdir()) == []


def test_generic_content_type_with_non_video_bytes_is_refused(tmp_path):
    downloader = MediaDownloader(retry_policy=FAST_RETRIES)
    with requests_mock.Mocker() as mock:
        mock.get(
            "https://cdn.test/x.mp4", content=b"<html>denied</html>", headers={"Content-Type": "binary/octet-stream"}
        )
        with pytest.raises(MidjourneyMediaContentError, match="first bytes are not a video"):
            downloader.download("https://cdn.test/x.mp4", resolve_destination(str(tmp_path)) / "x.mp4")
    assert list(tmp_path.iterdir()) == []


def test_clip_over_the_size_cap_is_refused_before_its_body_is_read(hook, emulator, tmp_path):
    task_id = finished_task(hook, emulator, batch_size=1)
    with pytest.raises(MidjourneyMediaTooLargeError, match=r"Content-Length 1880 bytes .* cap of 1000 bytes") as info:
        save_task_clips(hook, task_id, str(tmp_path), max_file_bytes=1000)
    assert isinstance(info.value, MidjourneyPermanentError)
    assert emulator.count("media") == 1
    assert list(tmp_path.iterdir()) == []


def test_size_cap_is_enforced_while_streaming_without_content_length(tmp_path):
    downloader = MediaDownloader(retry_policy=FAST_RETRIES, max_bytes=4096, chunk_size=1024)
    body = b"".join(media.streamed_clip(10_000))

    with requests_mock.Mocker() as mock:
        mock.get("https://cdn.test/big.mp4", body=io.BytesIO(body), headers={"Content-Type": "video/mp4"})
        with pytest.raises(MidjourneyMediaTooLargeError, match="more than 4096 bytes"):
            downloader.download("https://cdn.test/big.mp4", resolve_destination(str(tmp_path)) / "big.mp4")
    assert list(tmp_path.iterdir()) == []


def test_dropped_connection_leaves_no_file_and_is_retryable(hook, emulator, tmp_path):
    task_id = finished_task(hook, emulator, batch_size=1)
    target = tmp_path / f"{task_id}_0.mp4"
    target.write_bytes(b"an older complete file")
    emulator.config.media_drop_after_bytes = 1000

    with pytest.raises(MidjourneyDownloadError) as info:
        save_task_clips(hook, task_id, str(tmp_path), overwrite=True, downloader=fast_downloader(hook))

    error = info.value
    assert isinstance(error, MidjourneyTransientError)
    assert not isinstance(error, MidjourneyPermanentError)
    from airflow.providers.common.compat.sdk import AirflowFailException

    assert not isinstance(error, AirflowFailException)
    assert "clip 0 of task" in str(error)
    assert "Connection lost while downloading" in str(error)
    assert "of 1880 bytes" in str(error)
    assert emulator.count("media") == 3  # every attempt started from scratch
    assert [r.fault for r in emulator.requests_to("media")] == ["truncated"] * 3
    assert target.read_bytes() == b"an older complete file"  # never replaced by a partial file
    assert leftovers(tmp_path) == []
    assert not (tmp_path / MANIFEST_NAME).exists()
    assert not (tmp_path / TASK_MANIFESTS_DIR).exists()


def test_a_drop_is_retried_from_scratch_then_succeeds(hook, emulator, tmp_path):
    task_id = finished_task(hook, emulator, batch_size=1)
    emulator.config.fail_next = [("media", "drop"), ("media", "503")]
    (clip,) = save_task_clips(hook, task_id, str(tmp_path), downloader=fast_downloader(hook))
    assert [r.fault for r in emulator.requests_to("media")] == ["drop", "503", None]
    assert (tmp_path / f"{task_id}_0.mp4").read_bytes() == media.clip_bytes(0)
    assert clip.xcom()["sha256"] == sha(media.clip_bytes(0))


def _http_date(seconds_from_now: float) -> str:
    return format_datetime(datetime.now(timezone.utc) + timedelta(seconds=seconds_from_now), usegmt=True)


@pytest.mark.parametrize(
    ("header", "wait"),
    [
        pytest.param(lambda: "7", 7.0, id="seconds"),
        pytest.param(lambda: _http_date(120), pytest.approx(120, abs=2), id="future-http-date"),
        pytest.param(lambda: _http_date(-120), 0.0, id="past-http-date"),
        pytest.param(lambda: "soon", None, id="unreadable"),
        pytest.param(lambda: None, None, id="absent"),
    ],
)
def test_retry_after_of_a_busy_media_server_sets_the_wait_before_the_next_attempt(tmp_path, header, wait):
    """The backoff waits ``error.retry_after`` when the server gave one (seconds or an HTTP date)."""
    downloader = MediaDownloader(retry_policy=RetryPolicy(1, 0.01, 0.02))  # one attempt: the error, no sleep
    value = header()
    headers = {"Retry-After": value} if value is not None else {}
    with requests_mock.Mocker() as mock:
        mock.get("https://cdn.test/busy.mp4", status_code=503, headers=headers)
        with pytest.raises(MidjourneyDownloadError) as info:
            downloader.download("https://cdn.test/busy.mp4", resolve_destination(str(tmp_path)) / "busy.mp4")
    assert info.value.http_status == 503
    assert info.value.retry_after == wait
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("destination", "needle"),
    [
        ("s3://bucket/mj/", "apache-airflow-providers-amazon"),
        ("s3://aws_conn@bucket/mj/", "apache-airflow-providers-amazon"),
        ("gs://bucket/mj/", "apache-airflow-providers-google"),
        ("gcs://bucket/mj/", "apache-airflow-providers-google"),
        ("abfs://container/mj/", "apache-airflow-providers-microsoft-azure"),
        ("sftp://host/mj/", "paramiko"),
        ("nosuchfs://x/mj/", "nosuchfs"),
    ],
)
def test_destination_without_a_filesystem_names_what_to_install(hook, emulator, destination, needle):
    with pytest.raises(MidjourneyConfigurationError, match=needle):
        save_task_clips(hook, "1795", destination)
    assert emulator.counters["requests"] == 0


def test_unfinished_and_failed_tasks(hook, emulator, tmp_path):
    emulator.config.video_duration = 60
    running = hook.submit_video(PROMPT, IMAGE, "low")
    with pytest.raises(MidjourneyTaskNotReadyError, match="not finished") as info:
        save_task_clips(hook, running, str(tmp_path))
    assert not isinstance(info.value, MidjourneyPermanentError)
    emulator.fail_task(running, "Job failed: moderation")
    with pytest.raises(MidjourneyTaskFailedError, match="ended FAILURE: Job failed: moderation"):
        save_task_clips(hook, running, str(tmp_path))
    assert emulator.count("media") == 0


# ------------------------------------------------------------------------------------------ the operator


def test_operator_is_exported_from_the_video_module_and_templated():
    from airflow_provider_mjvideo.operators import download

    assert DownloadVideoOperator is download.DownloadVideoOperator
    assert tuple(DownloadVideoOperator.template_fields) == ("mj_task_id", "destination", "indexes")


@pytest.mark.parametrize(
    ("kwargs", "parameter"),
    [
        ({"indexes": [4]}, "indexes"),
        ({"indexes": [0, True]}, "indexes"),
        ({"indexes": []}, "indexes"),
        ({"indexes": "first"}, "indexes"),
        ({"max_file_bytes": 0}, "max_file_bytes"),
        ({"max_file_bytes": 1.5}, "max_file_bytes"),
        ({"destination": ""}, "destination"),
        ({"destination": "  "}, "destination"),
        ({"destination": "relative/dir"}, "destination"),
        ({"mj_task_id": ""}, "mj_task_id"),
        ({"overwrite": "maybe"}, "overwrite"),
    ],
)
def test_operator_rejects_literal_mistakes_at_construction(kwargs, parameter):
    arguments = {"task_id": "download", "mj_task_id": "1795", "destination": "file:///data/mj/", **kwargs}
    with pytest.raises(MidjourneyValidationError) as info:
        DownloadVideoOperator(**arguments)
    assert info.value.parameter == parameter


def test_operator_checks_rendered_values_before_any_request(hook, emulator, tmp_path):
    operator = DownloadVideoOperator(
        task_id="download", mj_task_id="{{ ti.xcom_pull('x') }}", destination="{{ params.d }}", indexes="{{ params.i }}"
    )
    for rendered, parameter in (
        ({"mj_task_id": "1795", "destination": str(tmp_path), "indexes": "[0, 9]"}, "indexes"),
        ({"mj_task_id": "", "destination": str(tmp_path), "indexes": None}, "mj_task_id"),
        ({"mj_task_id": "1795", "destination": "relative/dir", "indexes": None}, "destination"),
    ):
        for name, value in rendered.items():
            setattr(operator, name, value)
        with pytest.raises(MidjourneyValidationError) as info:
            operator.execute({})
        assert info.value.parameter == parameter
    operator.mj_task_id, operator.destination, operator.indexes = "1795", "s3://bucket/", None
    with pytest.raises(MidjourneyConfigurationError, match="apache-airflow-providers-amazon"):
        operator.execute({})
    assert emulator.counters["requests"] == 0


def test_operator_execute_returns_the_manifest_and_accepts_a_sensor_summary(hook, emulator, tmp_path):
    task_id = finished_task(hook, emulator, batch_size=2)
    summary = hook.get_task(task_id).to_summary()
    operator = DownloadVideoOperator(
        task_id="download", mj_task_id=summary, destination=f"file://{tmp_path}/", indexes=1
    )
    assert operator.execute({}) == [
        {
            "index": 1,
            "url": f"{emulator.root_url}/media/{task_id}/1.mp4",
            "path": f"file://{tmp_path}/{task_id}_1.mp4",
            "bytes": len(media.clip_bytes(1)),
            "sha256": sha(media.clip_bytes(1)),
        }
    ]
    assert emulator.count("media") == 1


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, None),
        ("", None),
        ("None", None),
        (2, [2]),
        ("2", [2]),
        ("[3, 1, 3]", [3, 1]),
        ((0, "1"), [0, 1]),
        ([0, 1, 2, 3], [0, 1, 2, 3]),
    ],
)
def test_check_indexes(value, expected):
    assert check_indexes(value) == expected


_DAG_FILE = """
from __future__ import annotations

import pendulum
from airflow.sdk import DAG

from airflow_provider_mjvideo.operators.video import DownloadVideoOperator, SubmitVideoOperator
from airflow_provider_mjvideo.sensors.video import MidjourneyTaskSensor

with DAG(
    "mjvideo_download_test",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    params={"dest": "/data/unset"},
) as dag:
    generate = SubmitVideoOperator(task_id="generate", prompt="__PROMPT__", image="__IMAGE__")
    wait = MidjourneyTaskSensor(task_id="wait", mj_task_id=generate.output, poke_interval=0.1, timeout=60)
    download = DownloadVideoOperator(
        task_id="download",
        mj_task_id=generate.output,
        destination="file://{{ params.dest }}/{{ ds }}/",
        indexes=[0, 3],
    )
    generate >> wait >> download
"""


def test_dag_test_submit_wait_download(airflow_db, mj_conn, emulator, tmp_path, monkeypatch):
    """A real ``dag.test()`` run: SubmitVideoOperator → MidjourneyTaskSensor → DownloadVideoOperator."""
    import importlib.util

    dags = tmp_path / "dags"
    dags.mkdir()
    (dags / "mjvideo_download_test.py").write_text(_DAG_FILE.replace("__PROMPT__", PROMPT).replace("__IMAGE__", IMAGE))
    bundle = {"name": "mjvideo-download-test", "classpath": "airflow.dag_processing.bundles.local.LocalDagBundle"}
    bundle["kwargs"] = {"path": str(dags), "refresh_interval": 0}  # type: ignore[assignment]
    monkeypatch.setenv("AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST", json.dumps([bundle]))
    spec = importlib.util.spec_from_file_location("mjvideo_download_test", dags / "mjvideo_download_test.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    out = tmp_path / "out"

    run = module.dag.test(logical_date=pendulum.datetime(2026, 3, 4, tz="UTC"), run_conf={"dest": str(out)})

    assert run.state == "success"
    task_id = xcom_value(run, "generate")
    folder = out / "2026-03-04"
    assert xcom_value(run, "download") == [
        {
            "index": i,
            "url": f"{emulator.root_url}/media/{task_id}/{i}.mp4",
            "path": f"file://{folder}/{task_id}_{i}.mp4",
            "bytes": len(media.clip_bytes(i)),
            "sha256": sha(media.clip_bytes(i)),
        }
        for i in (0, 3)
    ]
    for i in (0, 3):
        assert (folder / f"{task_id}_{i}.mp4").read_bytes() == media.clip_bytes(i)
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        [GALLERY_NAME, MANIFEST_NAME, TASK_MANIFESTS_DIR, f"{task_id}_0.mp4", f"{task_id}_3.mp4"]
    )
    assert emulator.count("media") == 2
    assert SECRET_KEY not in json.dumps(list(xcoms(run.dag_id, run.run_id, raw=True).values()), default=str)


# ------------------------------------------------------------------------------------------ a large clip


#: Measures one download in a fresh interpreter (shared with the benchmark).
PROBE = REPO / "benchmarks" / "download_probe.py"


@pytest.mark.slow
def test_a_200_mb_clip_streams_with_flat_memory(hook, emulator, tmp_path):
    size = 200 * MB
    emulator.config.clip_size_bytes = size
    task_id = finished_task(hook, emulator, batch_size=1)
    env = {**os.environ, "AIRFLOW_CONN_MIDJOURNEY_DEFAULT": connection_json(emulator)}
    child = subprocess.run(
        [sys.executable, str(PROBE), task_id, f"file://{tmp_path}/"],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )
    assert child.returncode == 0, child.stderr[-3000:]
    report = json.loads(child.stdout.strip().splitlines()[-1])
    assert report["peak_reset"], "the probe could not reset the peak RSS"
    growth = report["peak"] - report["baseline"]
    print(
        f"200 MB clip: {size / MB / report['seconds']:.0f} MB/s; RSS {report['baseline'] / MB:.1f} MB before, "
        f"peak {report['peak'] / MB:.1f} MB (+{growth / MB:.2f} MB)"
    )
    assert growth < 60 * MB, f"peak RSS grew by {growth / MB:.1f} MB while saving a {size / MB:.0f} MB clip"
    assert report["control"] - report["baseline"] >= 63 * MB  # the probe does see memory that is really used

    expected = hashlib.sha256()
    for piece in media.streamed_clip(size):
        expected.update(piece)
    path = tmp_path / f"{task_id}_0.mp4"
    (clip,) = report["clips"]
    assert clip == {
        "index": 0,
        "url": f"{emulator.root_url}/media/{task_id}/0.mp4",
        "path": f"file://{path}",
        "bytes": size,
        "sha256": expected.hexdigest(),
    }
    assert path.stat().st_size == size
    on_disk = hashlib.sha256()
    with path.open("rb") as handle:
        head = handle.read(len(media.clip_bytes(0)))
        on_disk.update(head)
        while chunk := handle.read(4 * MB):
            on_disk.update(chunk)
    assert head == media.clip_bytes(0)
    assert on_disk.hexdigest() == expected.hexdigest()
    with path.open("rb") as handle:
        handle.seek(size - 4096)
        assert handle.read() == media.expected_filler(size - 4096, 4096)
    assert emulator.count("media") == 1
    assert leftovers(tmp_path) == []
