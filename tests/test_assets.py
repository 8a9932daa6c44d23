"""
Asset events: the extra a download's or a submission's event carries, read back from the metadata database
after real ``dag.test()`` runs, and the publish example that reads them.

Every case checks that the extra is plain JSON without a clip URL, a query string or the key.
"""

from __future__ import annotations

import importlib.util
import json
import uuid
from pathlib import Path
from typing import Any

import pendulum
import pytest
from airflow.providers.common.compat.sdk import AirflowFailException
from airflow.sdk import DAG, Asset
from helpers import REPO, SECRET_KEY
from helpers.dag_runs import asset_events, task_states, xcom_value

from airflow_provider_mjvideo.assets import action_label, clips_from_events, without_secrets
from airflow_provider_mjvideo.operators.video import DownloadVideoOperator, SubmitVideoOperator
from airflow_provider_mjvideo.testing import MidjourneyEmulator
from airflow_provider_mjvideo.usage import USAGE_XCOM_KEY

START = pendulum.datetime(2026, 1, 1, tz="UTC")
IMAGE = "https://cdn.example.com/frames/lighthouse.png"
PROMPT = "a lighthouse in the fog, waves below"
CLIPS = Asset("mjvideo_test_clips")
SUBMITTED = Asset("mjvideo_test_submissions")


def _dag_id(request: pytest.FixtureRequest) -> str:
    return f"assets_{request.node.name}".replace("[", "_").replace("]", "").replace("-", "_")[:200]


def _assert_plain_and_secret_free(extra: Any) -> None:
    text = json.dumps(extra)
    assert json.loads(text) == extra
    assert SECRET_KEY not in text
    assert "?" not in text
    assert "/media/" not in text  # no clip URL of the emulator's CDN


def _load_publish_example() -> Any:
    spec = importlib.util.spec_from_file_location(
        f"mjvideo_publish_{uuid.uuid4().hex}", REPO / "example_dags" / "mjvideo_publish.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def saved_run(run_dag: Any, emulator: MidjourneyEmulator, tmp_path: Path, request: pytest.FixtureRequest) -> Any:
    """A run that submits a video, waits, and saves clips 0 and 2 with the ``CLIPS`` asset as the download's outlet."""
    with DAG(_dag_id(request), schedule=None, start_date=START) as dag:
        submit = SubmitVideoOperator(
            task_id="submit", prompt=PROMPT, image=IMAGE, wait_for_completion=True, poll_interval=0.2
        )
        DownloadVideoOperator(
            task_id="save", mj_task_id=submit.output, destination=(tmp_path / "out").as_uri(), indexes=[0, 2],
            outlets=[CLIPS],
        )  # fmt: skip
    return run_dag(dag)


# ------------------------------------------------------------------------------------------ downloads


def test_a_download_event_lists_the_saved_clips_with_sizes_and_hashes(saved_run: Any) -> None:
    assert set(task_states(saved_run).values()) == {("success", 1)}
    mj_task_id = xcom_value(saved_run, "submit")
    manifest = xcom_value(saved_run, "save")

    (event,) = asset_events(saved_run.dag_id, saved_run.run_id)

    assert (event.name, event.source_task_id, event.source_map_index) == (CLIPS.name, "save", -1)
    assert event.extra == {
        "generator": event.extra["generator"],
        "mj_task_id": mj_task_id,
        "prompt": PROMPT,
        "action": "video",
        "mj_action": "VIDEO",
        "parent_id": None,
        "clips": [{key: entry[key] for key in ("index", "path", "bytes", "sha256")} for entry in manifest],
    }
    assert event.extra["generator"].startswith("airflow-provider-mjvideo ")
    assert [clip["index"] for clip in event.extra["clips"]] == [0, 2]
    for clip in event.extra["clips"]:
        path = Path(clip["path"].removeprefix("file://"))
        assert path.name == f"{mj_task_id}_{clip['index']}.mp4"
        assert path.stat().st_size == clip["bytes"] > 0
    _assert_plain_and_secret_free(event.extra)


# ------------------------------------------------------------------------------------------ submissions


@pytest.mark.parametrize(
    ("wait", "deferrable"), [(False, False), (True, False), (True, True)], ids=["no-wait", "polling", "deferred"]
)
def test_a_submission_event_carries_the_ids_prompt_status_and_usage(
    run_dag: Any, emulator: MidjourneyEmulator, request: pytest.FixtureRequest, wait: bool, deferrable: bool
) -> None:
    emulator.config.video_duration = 1.0  # long enough for a deferrable wait to defer
    with DAG(_dag_id(request), schedule=None, start_date=START) as dag:
        first = SubmitVideoOperator(
            task_id="generate", prompt=PROMPT, image=IMAGE, wait_for_completion=True, poll_interval=0.2
        )
        SubmitVideoOperator(
            task_id="extend", action="extend", index=1, mj_task_id=first.output, prompt="the light turns red",
            wait_for_completion=wait, deferrable=deferrable, poll_interval=0.2, outlets=[SUBMITTED],
        )  # fmt: skip

    run = run_dag(dag)

    assert set(task_states(run).values()) == {("success", 1)}
    parent, mj_task_id = xcom_value(run, "generate"), xcom_value(run, "extend")
    (event,) = asset_events(run.dag_id, run.run_id)  # `generate` has no outlet
    assert (event.name, event.source_task_id) == (SUBMITTED.name, "extend")
    usage = xcom_value(run, "extend", USAGE_XCOM_KEY)
    assert [(record["count"], record["mj_task_id"], record["action"]) for record in usage] == [
        (1, mj_task_id, "extend")
    ]
    expected: dict[str, Any] = {"mj_task_id": mj_task_id, "action": "extend", "usage": usage}
    if wait:
        expected.update(
            generator=event.extra["generator"],
            prompt="the light turns red",
            mj_action=emulator.tasks[mj_task_id]["action"],
            parent_id=parent,
            status="SUCCESS",
            urls=4,
        )
    assert event.extra == expected
    _assert_plain_and_secret_free(event.extra)


# ------------------------------------------------------------------------------------------ publish example


def test_publish_verifies_the_clips_of_its_events_and_writes_a_summary_next_to_them(saved_run: Any) -> None:
    events = asset_events(saved_run.dag_id, saved_run.run_id)
    publish = _load_publish_example().dag.task_dict["publish"].python_callable
    manifest = xcom_value(saved_run, "save")
    folder = Path(manifest[0]["path"].removeprefix("file://")).parent

    # What Airflow passes is a mapping of assets to their events; the task reads only its values (keyed by name
    # here: Airflow 3.0's Asset is not hashable).
    written = publish(triggering_asset_events={CLIPS.name: events}, run_id="asset_triggered__2026-12-01T10:00:00+00:00")

    summary_path = folder / "published" / "asset_triggered__2026-12-01T10-00-00-00-00.json"
    assert written == [summary_path.as_uri()]
    summary = json.loads(summary_path.read_text())
    assert summary["run_id"] == "asset_triggered__2026-12-01T10:00:00+00:00"
    assert [(clip["path"], clip["sha256"], clip["verified"]) for clip in summary["clips"]] == [
        (entry["path"], entry["sha256"], True) for entry in manifest
    ]
    assert {clip["source_task_id"] for clip in summary["clips"]} == {"save"}

    # A clip changed since its event: the run fails, naming it, and publishes nothing more.
    tampered = Path(manifest[1]["path"].removeprefix("file://"))
    tampered.write_bytes(tampered.read_bytes() + b"x")
    with pytest.raises(AirflowFailException, match=rf"{tampered.name} changed since it was saved"):
        publish(triggering_asset_events={CLIPS.name: events}, run_id="asset_triggered__again")
    assert not (folder / "published" / "asset_triggered__again.json").exists()


def test_publish_without_events_writes_nothing() -> None:
    publish = _load_publish_example().dag.task_dict["publish"].python_callable
    assert publish(triggering_asset_events={}, run_id="manual__1") == []


# ------------------------------------------------------------------------------------------ the readers


def test_clips_from_events_keeps_only_download_events_and_names_their_source() -> None:
    clip = {"index": 3, "path": "s3://bucket/clips/1_3.mp4", "bytes": 10, "sha256": "ab" * 32}
    download = {
        "extra": {"mj_task_id": "1", "prompt": "p", "action": "video", "clips": [clip, {"index": 1}]},
        "source_dag_id": "d",
        "source_run_id": "r",
        "source_task_id": "save",
        "source_map_index": 2,
    }
    submission = {"extra": {"mj_task_id": "2", "usage": []}, "source_task_id": "submit"}

    assert clips_from_events([[download, submission], {"extra": None}]) == [
        {
            "mj_task_id": "1",
            "prompt": "p",
            "action": "video",
            **clip,
            "source_dag_id": "d",
            "source_run_id": "r",
            "source_task_id": "save",
            "source_map_index": 2,
        }
    ]


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        ("https://cdn.example.com/v/1.mp4?X-Amz-Signature=abc&X-Amz-Credential=k", "https://cdn.example.com/v/1.mp4"),
        ("https://user:secret@cdn.example.com/a.mp4#t=1", "https://user@cdn.example.com/a.mp4"),
        ("s3://aws_default@bucket/clips/1_0.mp4", "s3://aws_default@bucket/clips/1_0.mp4"),
        ("file:///data/mj/1_0.mp4", "file:///data/mj/1_0.mp4"),
    ],
)
def test_without_secrets_drops_queries_fragments_and_passwords(uri: str, expected: str) -> None:
    assert without_secrets(uri) == expected


@pytest.mark.parametrize(
    ("mj_action", "kind", "parent_id", "label"),
    [
        ("VIDEO", "video", None, "video"),
        ("VIDEO", "video", "17960000000000001", "extend"),
        ("VIDEO_EXTEND", "video", None, "extend"),
        ("UNKNOWN", "video", None, "video"),
        ("IMAGINE", "image", None, "image"),
        ("UPSCALE", "image", "17960000000000001", "image"),
    ],
)
def test_action_label(mj_action: str, kind: str, parent_id: str | None, label: str) -> None:
    assert action_label(mj_action, kind, parent_id) == label
