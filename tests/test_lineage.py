"""
OpenLineage: the datasets the provider's tasks report, their names, and that the provider never needs OpenLineage.

The names and the builders are checked directly (``s3://`` only as a path: no network); one real
``airflow dags test`` run with the OpenLineage provider's file transport shows the emitted events carry them.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from helpers import REPO, SECRET_KEY
from helpers.dag_runs import xcoms

from airflow_provider_mjvideo.lineage import storage_dataset_id, task_dataset_id, url_dataset_id
from airflow_provider_mjvideo.testing import MidjourneyEmulator

PROMPT = "a lighthouse in the fog"


def _openlineage() -> None:
    pytest.importorskip("airflow.providers.openlineage", reason="apache-airflow-providers-openlineage is not installed")


def _ids(datasets: list[Any]) -> list[tuple[str, str]]:
    return [(dataset.namespace, dataset.name) for dataset in datasets]


# ------------------------------------------------------------------------------------------ names


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        ("file:///data/mj/run 1/17_0.mp4", ("file", "/data/mj/run 1/17_0.mp4")),
        ("file://nas01/share/17_0.mp4", ("file://nas01", "/share/17_0.mp4")),
        ("/data/mj/17_0.mp4", ("file", "/data/mj/17_0.mp4")),
        ("s3://videos/mjvideo_chain/run/17_0.mp4", ("s3://videos", "mjvideo_chain/run/17_0.mp4")),
        ("s3://aws_media@videos/clips/17_0.mp4", ("s3://videos", "clips/17_0.mp4")),
        ("gs://bucket/a/b.mp4", ("gs://bucket", "a/b.mp4")),
    ],
)
def test_a_stored_file_is_named_by_scheme_bucket_and_key(uri: str, expected: tuple[str, str]) -> None:
    assert storage_dataset_id(uri) == expected


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://cdn.example.com/frames/a.png?X-Amz-Signature=abc", ("https://cdn.example.com", "/frames/a.png")),
        ("http://user:pw@127.0.0.1:8080/a.png", ("http://127.0.0.1:8080", "/a.png")),
        ("s3://frames/first/a.png", ("s3://frames", "first/a.png")),
        ("data:image/png;base64,iVBORw0KGgo=", None),
        ("not a url", None),
    ],
)
def test_an_input_image_is_named_when_it_is_a_url_or_a_stored_file(url: str, expected: Any) -> None:
    assert url_dataset_id(url) == expected


@pytest.mark.parametrize(
    ("base_url", "namespace"),
    [
        ("https://api.example.com", "midjourney://api.example.com"),
        ("https://api.example.com/mj-proxy", "midjourney://api.example.com"),
        ("http://127.0.0.1:8080", "midjourney://127.0.0.1:8080"),
    ],
)
def test_a_midjourney_task_is_named_by_api_host_and_id(base_url: str, namespace: str) -> None:
    assert task_dataset_id(base_url, "17960000000000001") == (namespace, "17960000000000001")


# ------------------------------------------------------------------------------------------ builders


@pytest.mark.parametrize(
    ("destination", "outputs"),
    [
        ("file:///data/mj/run/", [("file", "/data/mj/run/17_0.mp4"), ("file", "/data/mj/run/17_3.mp4")]),
        ("s3://aws_media@videos/run/", [("s3://videos", "run/17_0.mp4"), ("s3://videos", "run/17_3.mp4")]),
    ],
    ids=["file", "s3"],
)
def test_download_lineage_has_the_task_in_and_each_saved_file_out(destination: str, outputs: list[Any]) -> None:
    _openlineage()
    from airflow_provider_mjvideo.lineage import download_lineage

    clips = [{"path": f"{destination}17_{i}.mp4", "bytes": 1000 + i, "sha256": f"{i}" * 64} for i in (0, 3)]

    lineage = download_lineage("https://api.example.com/v1", "17", PROMPT, clips)

    assert _ids(lineage.inputs) == [("midjourney://api.example.com", "17")]
    assert lineage.inputs[0].facets["documentation"].description == PROMPT
    assert _ids(lineage.outputs) == outputs
    assert [o.facets["version"].datasetVersion for o in lineage.outputs] == ["0" * 64, "3" * 64]
    stats = [o.outputFacets["outputStatistics"] for o in lineage.outputs]
    assert [(s.size, s.fileCount) for s in stats] == [(1000, 1), (1003, 1)]
    query = lineage.run_facets["externalQuery"]
    assert (query.externalQueryId, query.source) == ("17", "midjourney://api.example.com")


def test_submit_lineage_has_its_images_and_parent_in_and_the_task_out() -> None:
    _openlineage()
    from airflow_provider_mjvideo.lineage import submit_lineage

    lineage = submit_lineage(
        "https://api.example.com",
        "18",
        prompt=PROMPT,
        images=["https://cdn.example.com/f.png?sig=1", None, "data:image/png;base64,AAAA"],
        parent_id="17",
    )

    assert _ids(lineage.inputs) == [("https://cdn.example.com", "/f.png"), ("midjourney://api.example.com", "17")]
    assert _ids(lineage.outputs) == [("midjourney://api.example.com", "18")]
    assert lineage.outputs[0].facets["documentation"].description == PROMPT


def test_the_download_operator_reports_what_it_saved(hook: Any, emulator: MidjourneyEmulator, tmp_path: Path) -> None:
    _openlineage()
    from airflow_provider_mjvideo.operators.video import DownloadVideoOperator

    mj_task_id = hook.submit_video(PROMPT, "https://cdn.example.com/f.png")
    emulator.complete_task(mj_task_id)
    operator = DownloadVideoOperator(task_id="save", mj_task_id=mj_task_id, destination=tmp_path.as_uri(), indexes=[1])
    assert operator.get_openlineage_facets_on_complete(None) is None  # nothing saved yet

    (saved,) = operator.execute({})
    lineage = operator.get_openlineage_facets_on_complete(None)

    assert _ids(lineage.inputs) == [task_dataset_id(emulator.url, mj_task_id)]
    assert _ids(lineage.outputs) == [("file", str(tmp_path / f"{mj_task_id}_1.mp4"))]
    assert lineage.outputs[0].facets["version"].datasetVersion == saved["sha256"]


def test_the_submit_operator_reports_its_task_once_it_has_one(mj_conn: str, emulator: MidjourneyEmulator) -> None:
    _openlineage()
    from airflow_provider_mjvideo.operators.video import SubmitVideoOperator

    operator = SubmitVideoOperator(
        task_id="extend",
        action="extend",
        index=0,
        mj_task_id="17",
        prompt=PROMPT,
        extra_body={"endImage": "https://cdn.example.com/end.png?sig=2"},
    )
    assert operator.get_openlineage_facets_on_complete(None) is None
    operator._result = "18"  # what a finished run leaves

    lineage = operator.get_openlineage_facets_on_complete(None)

    namespace = task_dataset_id(emulator.url, "18")[0]
    assert _ids(lineage.inputs) == [("https://cdn.example.com", "/end.png"), (namespace, "17")]
    assert _ids(lineage.outputs) == [(namespace, "18")]


# ------------------------------------------------------------------------------------------ optional


def test_nothing_of_openlineage_is_imported_and_nothing_breaks_without_it(tmp_path: Path) -> None:
    # OpenLineage's client and the provider's modules cannot be imported; Airflow's own configuration still reads
    # the provider's metadata (get_provider_info) when the distribution is installed, as it does for any provider.
    script = textwrap.dedent(
        f"""
        import os, sys

        ALLOWED = ("airflow.providers.openlineage", "airflow.providers.openlineage.get_provider_info")

        class NoOpenLineage:
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] == "openlineage" or (
                    name.startswith("airflow.providers.openlineage.") and name not in ALLOWED
                ):
                    raise ImportError(f"{{name}} is not installed here")
                return None

        sys.meta_path.insert(0, NoOpenLineage())
        import importlib.util
        from airflow_provider_mjvideo.hooks.midjourney import MidjourneyHook
        from airflow_provider_mjvideo.operators.video import DownloadVideoOperator, SubmitVideoOperator
        from airflow_provider_mjvideo.testing import EmulatorConfig, MidjourneyEmulator

        for name in ("mjvideo_chain", "mjvideo_publish"):
            spec = importlib.util.spec_from_file_location(name, {str(REPO / "example_dags")!r} + "/" + name + ".py")
            spec.loader.exec_module(importlib.util.module_from_spec(spec))
        with MidjourneyEmulator(EmulatorConfig(api_key="k", video_duration=0.1)) as emu:
            os.environ["AIRFLOW_CONN_MIDJOURNEY_DEFAULT"] = emu.connection_json()
            mj_task_id = MidjourneyHook().submit_video("a boat", "https://cdn.example.com/f.png")
            emu.complete_task(mj_task_id)
            saved = DownloadVideoOperator(task_id="save", mj_task_id=mj_task_id, destination={tmp_path.as_uri()!r})
            print(len(saved.execute({{}})))
        print(sorted(m for m in sys.modules if "openlineage" in m and m not in ALLOWED))
        """
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    env = {name: value for name, value in env.items() if not name.startswith("AIRFLOW_CONN_")}
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=180, env=env, cwd=tmp_path, check=False
    )

    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.splitlines()[-2:] == ["4", "[]"]


# ------------------------------------------------------------------------------------------ a real run

LINEAGE_DAG = """
import pendulum
from airflow.sdk import DAG
from airflow_provider_mjvideo.operators.video import DownloadVideoOperator, SubmitVideoOperator

with DAG("mjvideo_lineage", schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC")) as dag:
    submit = SubmitVideoOperator(
        task_id="submit", prompt={prompt!r}, image="https://cdn.example.com/frames/lighthouse.png?sig=s3cr3t",
        wait_for_completion=True, poll_interval=0.2,
    )
    DownloadVideoOperator(task_id="save", mj_task_id=submit.output, destination={destination!r}, indexes=[0, 1])
"""


def test_a_run_with_the_openlineage_provider_emits_these_datasets(
    airflow_db: Path, mj_conn: str, emulator: MidjourneyEmulator, tmp_path: Path
) -> None:
    _openlineage()
    dags = tmp_path / "dags"
    dags.mkdir()
    (dags / "mjvideo_lineage.py").write_text(LINEAGE_DAG.format(prompt=PROMPT, destination=(tmp_path / "out").as_uri()))
    events_file = tmp_path / "openlineage.jsonl"
    env = {
        **os.environ,
        "AIRFLOW__CORE__DAGS_FOLDER": str(dags),
        "AIRFLOW__OPENLINEAGE__TRANSPORT": json.dumps(
            {"type": "file", "log_file_path": str(events_file), "append": True}
        ),
        "AIRFLOW__OPENLINEAGE__NAMESPACE": "mjvideo-test",
    }

    done = subprocess.run(
        [sys.executable, "-m", "airflow", "dags", "test", "mjvideo_lineage"],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        cwd=tmp_path,
        check=False,
    )

    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    text = events_file.read_text()
    events = [json.loads(line) for line in text.splitlines() if line.strip()]
    complete = {e["job"]["name"]: e for e in events if e["eventType"] == "COMPLETE"}
    submit, save = complete["mjvideo_lineage.submit"], complete["mjvideo_lineage.save"]
    run_id = submit["run"]["facets"]["airflow"]["dagRun"]["run_id"]
    values = xcoms("mjvideo_lineage", run_id, raw=True)
    mj_task_id, manifest = values[("submit", -1, "return_value")], values[("save", -1, "return_value")]
    task = task_dataset_id(emulator.url, mj_task_id)

    def ids(datasets: list[dict[str, Any]]) -> list[tuple[str, str]]:
        return [(dataset["namespace"], dataset["name"]) for dataset in datasets]

    assert ids(submit["inputs"]) == [("https://cdn.example.com", "/frames/lighthouse.png")]
    assert ids(submit["outputs"]) == [task]
    assert submit["outputs"][0]["facets"]["documentation"]["description"] == PROMPT
    assert ids(save["inputs"]) == [task]
    assert ids(save["outputs"]) == [("file", entry["path"].removeprefix("file://")) for entry in manifest]
    assert [o["facets"]["version"]["datasetVersion"] for o in save["outputs"]] == [e["sha256"] for e in manifest]
    assert [o["outputFacets"]["outputStatistics"]["size"] for o in save["outputs"]] == [e["bytes"] for e in manifest]
    for event in (submit, save):
        assert event["run"]["facets"]["externalQuery"]["externalQueryId"] == mj_task_id
    assert SECRET_KEY not in text
    assert "s3cr3t" not in text
    print(f"\nOpenLineage datasets of the download: inputs {ids(save['inputs'])}, outputs {ids(save['outputs'])}")
