"""The example DAGs: they parse cleanly without touching the network, and run end to end against the emulator."""

from __future__ import annotations

import importlib.util
import json
import socket
import uuid
from pathlib import Path
from typing import Any

import pendulum
import pytest
from helpers import REPO, SECRET_KEY
from helpers.dag_runs import asset_events, dag_bag, task_states, xcoms

from airflow_provider_mjvideo.testing import MidjourneyEmulator
from airflow_provider_mjvideo.usage import MidjourneyUsage
from airflow_provider_mjvideo.versions import HAS_UI_AND_REVIEW

EXAMPLES = REPO / "example_dags"
#: Every example file; each defines the DAG of its name. mjvideo_review needs Airflow 3.1 (human-in-the-loop): below
#: it the file defines no DAG, so the DagBag has no import error, and its SKIPPED says why (see its docstring).
EXAMPLE_FILES = (
    "mjvideo_chain",
    "mjvideo_daily",
    "mjvideo_fanout",
    "mjvideo_from_prompt",
    "mjvideo_publish",
    "mjvideo_review",
)
DAG_IDS = set(EXAMPLE_FILES) if HAS_UI_AND_REVIEW else set(EXAMPLE_FILES) - {"mjvideo_review"}


# ------------------------------------------------------------------------------------------ helpers


def load_example(name: str) -> Any:
    """Execute ``example_dags/<name>.py`` as a fresh module (so it reads the environment now) and return it."""
    spec = importlib.util.spec_from_file_location(f"mjvideo_example_{name}_{uuid.uuid4().hex}", EXAMPLES / f"{name}.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def clip_urls(emu: MidjourneyEmulator, task_id: str) -> list[str]:
    return [f"{emu.root_url}/media/{task_id}/{i}.mp4" for i in range(4)]


@pytest.fixture
def example_env(airflow_db: Path, mj_conn: str, emulator: MidjourneyEmulator, monkeypatch: pytest.MonkeyPatch):
    """Fast polls (read by the DAG files at import) and the connection on the emulator."""
    monkeypatch.setenv("MJVIDEO_POLL_INTERVAL", "0.2")
    return emulator


# ------------------------------------------------------------------------------------------ parsing


def test_dagbag_imports_exactly_the_examples_without_errors():
    bag = dag_bag(dag_folder=EXAMPLES)

    assert bag.import_errors == {}
    assert set(bag.dag_ids) == DAG_IDS
    assert len(bag.dag_ids) == len(DAG_IDS)
    assert sorted(path.stem for path in EXAMPLES.glob("*.py")) == sorted(EXAMPLE_FILES)
    for dag_id in DAG_IDS:
        assert "example" in bag.dags[dag_id].tags
    # The chain's downloads update the asset the publish DAG is scheduled on.
    (outlet,) = bag.dags["mjvideo_chain"].task_dict["save_clips"].partial_kwargs["outlets"]
    assert outlet.name == "mjvideo_clips"
    assert [asset.name for asset in bag.dags["mjvideo_publish"].timetable.asset_condition.objects] == [outlet.name]


def test_the_review_example_says_why_it_defines_no_dag_below_airflow_3_1():
    module = load_example("mjvideo_review")
    if HAS_UI_AND_REVIEW:
        assert module.SKIPPED is None
        assert module.dag.dag_id == "mjvideo_review"
    else:
        assert not hasattr(module, "dag")
        assert module.SKIPPED.startswith("mjvideo_review is not defined: ChooseClipOperator")
        assert "needs Airflow 3.1 or newer" in module.SKIPPED


def test_parsing_sends_no_request_and_opens_no_connection(emulator, mj_conn, monkeypatch):
    attempts: list[Any] = []
    real_connect = socket.socket.connect
    real_connect_ex = socket.socket.connect_ex

    def connect(self: socket.socket, address: Any) -> None:
        attempts.append(address)
        return real_connect(self, address)

    def connect_ex(self: socket.socket, address: Any) -> int:
        attempts.append(address)
        return real_connect_ex(self, address)

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket.socket, "connect_ex", connect_ex)

    bag = dag_bag(dag_folder=EXAMPLES)
    for name in EXAMPLE_FILES:
        load_example(name)

    assert bag.import_errors == {}
    assert set(bag.dag_ids) == DAG_IDS
    assert attempts == []
    assert emulator.requests == []
    # The recorder works: a real connection is seen.
    socket.create_connection(("127.0.0.1", emulator.port), timeout=2).close()
    assert attempts == [("127.0.0.1", emulator.port)]


# ------------------------------------------------------------------------------------------ dag.test


def test_chain_generates_and_extends_twice(example_env, run_dag, capfd, caplog, tmp_path):
    emulator = example_env
    emulator.config.video_duration = 0.6
    module = load_example("mjvideo_chain")
    assert module.POLL_INTERVAL == 0.2
    conf = {"destination": tmp_path.as_uri()} if "destination" in module.dag.params else None

    # Synced first, as the dag-processor does: Airflow 3.0's dag.test() refuses outlets on assets it never saw.
    dag_run = run_dag(module.dag, run_conf=conf)
    output = "\n".join(capfd.readouterr()) + caplog.text

    assert str(dag_run.state) == "success"
    states = task_states(dag_run)
    assert {state for state, _try in states.values()} == {"success"}  # every task instance, whatever the DAG ends with
    core = ("generate", "wait_generate", "extend_1", "wait_extend_1", "extend_2", "wait_extend_2")
    assert {task for task, _ in states} == set(module.dag.task_dict) >= set(core)
    values = xcoms(dag_run.dag_id, dag_run.run_id, raw=True)
    generate, extend_1, extend_2 = (values[(task, -1, "return_value")] for task in ("generate", "extend_1", "extend_2"))
    assert all(isinstance(task_id, str) for task_id in (generate, extend_1, extend_2))
    assert emulator.counters["submit_accepted"] == 3
    assert emulator.count("submit") == 3
    first, second, third = (r.json for r in emulator.requests_to("submit"))
    assert first["prompt"] == "a paper boat drifting down a rainy street, cinematic"
    assert first["image"] == "https://cdn.example.com/first-frames/paper-boat.png"
    assert "action" not in first
    assert (second["action"], second["taskId"], second["index"]) == ("extend", generate, 0)
    assert (third["action"], third["taskId"], third["index"]) == ("extend", extend_1, 0)
    assert type(second["index"]) is int
    assert (second["motion"], third["motion"]) == ("low", "high")
    assert emulator.tasks[extend_2]["parent_id"] == extend_1
    for wait, task_id in (("wait_generate", generate), ("wait_extend_1", extend_1), ("wait_extend_2", extend_2)):
        summary = values[(wait, -1, "return_value")]
        assert summary["id"] == task_id
        assert summary["status"] == "SUCCESS"
    final = values[("wait_extend_2", -1, "return_value")]
    assert final["video_urls"] == clip_urls(emulator, extend_2)
    assert len(final["video_urls"]) == 4
    # The mapped download saves the three videos into one folder, not one at a time, and its views list them all.
    assert module.dag.task_dict["save_clips"].max_active_tis_per_dagrun is None
    saved = [entry for index in range(3) for entry in values[("save_clips", index, "return_value")]]
    (folder,) = {Path(entry["path"].removeprefix("file://")).parent for entry in saved}
    assert folder.is_relative_to(tmp_path)
    every_clip = sorted((task_id, index) for task_id in (generate, extend_1, extend_2) for index in range(4))
    manifest = json.loads((folder / "manifest.json").read_text())
    assert sorted((c["mj_task_id"], c["index"]) for c in manifest["clips"]) == every_clip
    assert (folder / "index.html").read_text().count("<video controls") == 12
    assert sorted(p.name for p in (folder / "manifests").iterdir()) == sorted(
        f"{task_id}.json" for task_id in (generate, extend_1, extend_2)
    )
    # Each download's asset event lists the clips it saved, with the manifest's sizes and hashes; parents chain.
    events = asset_events(dag_run.dag_id, dag_run.run_id)
    assert sorted((event.name, event.source_task_id, event.source_map_index) for event in events) == [
        ("mjvideo_clips", "save_clips", index) for index in range(3)
    ]
    by_task = {event.extra["mj_task_id"]: event.extra for event in events}
    assert {task_id: extra["parent_id"] for task_id, extra in by_task.items()} == {
        generate: None,
        extend_1: generate,
        extend_2: extend_1,
    }
    assert [by_task[task_id]["action"] for task_id in (generate, extend_1, extend_2)] == ["video", "extend", "extend"]
    assert sorted((task_id, c["index"], c["sha256"]) for task_id, e in by_task.items() for c in e["clips"]) == sorted(
        (c["mj_task_id"], c["index"], c["sha256"]) for c in manifest["clips"]
    )
    assert SECRET_KEY not in json.dumps([event.extra for event in events])
    # Usage: exactly the emulator's accepted submissions, one per submit task.
    usage = MidjourneyUsage.from_db(dag_id=dag_run.dag_id, run_id=dag_run.run_id)
    assert usage.total == emulator.counters["submit_accepted"] == 3
    assert sorted((entry.task_id, entry.record.action, entry.record.mj_task_id) for entry in usage.entries) == [
        ("extend_1", "extend", extend_1),
        ("extend_2", "extend", extend_2),
        ("generate", "video", generate),
    ]
    (row,) = usage.summarize()
    assert (row["dag_id"], row["conn_id"], row["submits"], row["reattached"]) == (
        "mjvideo_chain",
        "midjourney_default",
        3,
        0,
    )
    print(f"\nUsage of the chain example:\n{usage.table()}")
    # The key never reaches XComs or logs (and the logs really were captured).
    assert SECRET_KEY not in json.dumps(list(values.values()))
    assert f"Midjourney accepted the video extend submission: task id {extend_2}" in output
    assert SECRET_KEY not in output


def test_fanout_submits_one_video_per_mapped_shot(example_env):
    emulator = example_env
    module = load_example("mjvideo_fanout")

    dag_run = module.dag.test()

    states = task_states(dag_run)
    assert {state for state, _try in states.values()} == {"success"}
    assert {task for task, _ in states} == set(module.dag.task_dict)
    assert {key for key in states if key[0] in ("generate", "wait")} == {
        (task, index) for task in ("generate", "wait") for index in range(3)
    }
    assert emulator.counters["submit_accepted"] == 3
    submitted = sorted((r.json["prompt"], r.json["image"]) for r in emulator.requests_to("submit"))
    assert submitted == sorted((shot["prompt"], shot["image"]) for shot in module.SHOTS)
    values = xcoms(dag_run.dag_id, dag_run.run_id, raw=True)
    for index in range(3):
        task_id = values[("generate", index, "return_value")]
        summary = values[("wait", index, "return_value")]
        assert summary["id"] == task_id
        assert summary["video_urls"] == clip_urls(emulator, task_id)
        assert emulator.tasks[task_id]["state"].endswith(f"/generate[{index}]")


def test_daily_renders_the_logical_date_into_the_prompt_and_image(example_env):
    emulator = example_env
    module = load_example("mjvideo_daily")
    assert module.POLL_INTERVAL == 0.2

    dag_run = module.dag.test(logical_date=pendulum.datetime(2026, 3, 14, tz="UTC"))

    states = task_states(dag_run)
    assert {state for state, _try in states.values()} == {"success"}
    assert {task for task, _ in states} == set(module.dag.task_dict) >= {"generate", "wait"}
    (body,) = (r.json for r in emulator.requests_to("submit"))
    assert body["prompt"] == "the city skyline on 2026-03-14, slow drifting clouds, golden hour"
    assert body["image"] == "https://cdn.example.com/daily-frames/20260314.png"
    assert body["batchSize"] == 4
    values = xcoms(dag_run.dag_id, dag_run.run_id, raw=True)
    task_id = values[("generate", -1, "return_value")]
    assert values[("wait", -1, "return_value")]["video_urls"] == clip_urls(emulator, task_id)


@pytest.mark.parametrize("deferrable", ["true", "false"], ids=["deferred", "worker"])
def test_from_prompt_goes_from_words_to_saved_pictures_and_clips(example_env, monkeypatch, tmp_path, deferrable):
    emulator = example_env
    emulator.config.image_duration = 0.3
    monkeypatch.setenv("MJVIDEO_DEFERRABLE", deferrable)
    module = load_example("mjvideo_from_prompt")
    assert module.DEFERRABLE is (deferrable == "true")

    dag_run = module.dag.test(run_conf={"index": 3, "destination": tmp_path.as_uri()})

    states = task_states(dag_run)
    assert {state for state, _try in states.values()} == {"success"}
    assert {task for task, _ in states} == set(module.dag.task_dict)
    # Exactly one paid job per step: a grid, an upscale of its fourth image, a video from it, an extend.
    assert [emulator.counters["accepted"][route] for route in ("imagine", "action", "submit")] == [1, 1, 2]
    assert emulator.count("modal") == 0
    values = xcoms(dag_run.dag_id, dag_run.run_id, raw=True)
    ids = {task: values[(task, -1, "return_value")] for task in ("imagine", "upscale", "animate", "extend")}
    (action,) = [r.json for r in emulator.requests_to("action")]
    assert action["taskId"] == ids["imagine"]
    assert "::upsample::4::" in action["customId"]
    upscaled = values[("wait_upscale", -1, "return_value")]
    animate_body, extend_body = [r.json for r in emulator.requests_to("submit")]
    assert animate_body["image"] == upscaled["image_url"]
    assert (extend_body["action"], extend_body["taskId"], extend_body["index"]) == ("extend", ids["animate"], 0)
    # Saved side by side: the grid with its four singles (trueai lists them), the upscale, the 8 clips, one gallery.
    saved = [entry for index in range(4) for entry in values[("save", index, "return_value")]]
    folder = Path(saved[0]["path"].removeprefix("file://")).parent
    assert {Path(entry["path"].removeprefix("file://")).parent for entry in saved} == {folder}
    names = sorted(Path(entry["path"]).name for entry in saved)
    assert sum(name.endswith(".mp4") for name in names) == 8
    assert sum(name.endswith(".png") for name in names) == 5 + 1
    gallery = (folder / "index.html").read_text()
    assert (gallery.count("<video"), gallery.count("<img")) == (8, 6)
