"""
``ChooseClipOperator``: a person picks the clip the DAG goes on with (Airflow 3.1+).

Runs use ``dag.test()`` against the emulator; the person's answers go through the API server's real
``hitlDetails`` routes (``helpers.api_app.HitlResponder``, the same requests the UI's form sends) while
``dag.test()`` waits for them.
"""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import requests
from helpers import SECRET_KEY
from helpers.api_app import HitlResponder
from helpers.dag_runs import task_states, write_dag, xcom_value

from airflow_provider_mjvideo.exceptions import MidjourneyValidationError
from airflow_provider_mjvideo.versions import HAS_UI_AND_REVIEW

pytestmark = pytest.mark.skipif(not HAS_UI_AND_REVIEW, reason="ChooseClipOperator needs Airflow 3.1+")

EXAMPLE = Path(__file__).resolve().parent.parent / "example_dags" / "mjvideo_review.py"


def _choose(**kwargs: Any) -> Any:
    from airflow_provider_mjvideo.operators.review import ChooseClipOperator

    return ChooseClipOperator(**{"task_id": "choose", "mj_task_id": "1754211234567123", **kwargs})


# ------------------------------------------------------------------------------------------ parse time


def test_defaults_timeout_subject_and_templated_task_id():
    choose = _choose(defaults=2, timeout=90, subject="Pick one", body="See {{ params.x }}", mj_task_id="{{ ti.x }}")
    assert choose.options == ["clip 0", "clip 1", "clip 2", "clip 3"]
    assert choose.defaults == ["clip 2"]
    assert choose.response_timeout == timedelta(seconds=90)
    assert (choose.subject, choose.body) == ("Pick one", "See {{ params.x }}")
    assert set(choose.template_fields) == {"subject", "body", "mj_task_id"}
    several = _choose(defaults=[0, 3], multiple=True, timeout=timedelta(hours=2))
    assert several.defaults == ["clip 0", "clip 3"]
    assert several.response_timeout == timedelta(hours=2)
    assert _choose().response_timeout is None
    assert _choose().defaults is None


@pytest.mark.parametrize(
    ("kwargs", "parameter", "message"),
    [
        ({"defaults": 4}, "defaults", "each index must be an integer 0-3, got 4"),
        ({"defaults": -1}, "defaults", "each index must be an integer 0-3, got -1"),
        ({"defaults": "clip 1"}, "defaults", "must be clip indexes 0-3"),
        ({"defaults": [0, 1]}, "defaults", "one clip without multiple=True"),
        ({"timeout": 0}, "timeout", "0"),
        ({"timeout": -5}, "timeout", "-5"),
        ({"mj_task_id": "12/../34"}, "mj_task_id", "is not a valid task id"),
        ({"mj_task_id": ""}, "mj_task_id", "non-empty"),
        ({"options": ["a"]}, "options", "is set by ChooseClipOperator"),
        ({"response_timeout": timedelta(1)}, "response_timeout", "is set by ChooseClipOperator"),
    ],
)
def test_bad_parameters_fail_when_the_dag_is_parsed(kwargs: dict[str, Any], parameter: str, message: str):
    with pytest.raises(MidjourneyValidationError, match=message) as raised:
        _choose(**kwargs)
    assert raised.value.parameter == parameter


@pytest.mark.parametrize(("option", "index"), [("clip 0", 0), ("clip 3", 3)])
def test_options_name_clip_indexes(option: str, index: int):
    from airflow_provider_mjvideo.operators.review import clip_option, option_index

    assert option_index(option) == index
    assert clip_option(index) == option


@pytest.mark.parametrize("option", ["clip 4", "clip -1", "Approve", "clip", "clip 1, 2"])
def test_a_choice_outside_clip_0_to_3_is_no_choice(option: str):
    from airflow_provider_mjvideo.operators.review import option_index

    with pytest.raises(MidjourneyValidationError):
        option_index(option)


# ------------------------------------------------------------------------------------------ runs


def test_the_review_example_extends_and_saves_the_clip_a_person_chose(
    airflow_api: Any, mj_conn: str, emulator: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    from helpers.dag_runs import load_dag_file, sync_dag_to_db

    monkeypatch.setenv("MJVIDEO_POLL_INTERVAL", "0.2")
    module = load_dag_file(EXAMPLE)
    sync_dag_to_db(module.dag, EXAMPLE.parent)
    refused: list[tuple[list[str], int]] = []

    def first_try_impossible_choices(detail: dict[str, Any]) -> None:
        if detail["task_instance"]["task_id"] != "choose":
            return
        client = airflow_api.client("admin", cookie=False)
        for impossible in (["clip 7"], ["clip 1", "clip 2"], ["Approve"]):
            answer = client.patch(responder.route(detail), json={"chosen_options": impossible})
            refused.append((impossible, answer.status_code))

    with HitlResponder(
        airflow_api,
        "mjvideo_review",
        {"approve": ["Approve"], "choose": ["clip 2"]},
        before_answer=first_try_impossible_choices,
    ) as responder:
        run = module.dag.test(run_conf={"destination": tmp_path.as_uri()})

    assert str(run.state) == "success"
    assert {state for state, _try in task_states(run).values()} == {"success"}
    assert responder.statuses == {"approve": [200], "choose": [200]}
    assert refused == [(["clip 7"], 400), (["clip 1", "clip 2"], 400), (["Approve"], 400)]

    generate = xcom_value(run, "generate")
    assert xcom_value(run, "choose") == 2  # an int, ready for index=
    extend_body = emulator.requests_to("submit")[1].json
    assert (extend_body["action"], extend_body["taskId"], extend_body["index"]) == ("extend", generate, 2)
    assert emulator.counters["submit_accepted"] == 2
    # What the person was shown: the four clips, each linked, the prompt, and the way to the Midjourney view.
    question = responder.seen["choose"]
    assert question["options"] == ["clip 0", "clip 1", "clip 2", "clip 3"]
    assert question["defaults"] == ["clip 0"]
    assert question["subject"] == "Which clip of the lighthouse video should go on?"
    body = question["body"]
    assert "**Prompt:** a lighthouse on a cliff at night, waves crashing" in body
    for index in range(4):
        assert f"- **clip {index}**: [watch it on the server]({emulator.root_url}/media/{generate}/{index}.mp4)" in body
    # Without [api] base_url the link is relative: the UI resolves it against its own base.
    run_id = run.run_id.replace(":", "%3A").replace("+", "%2B")
    assert f"the [Midjourney view](midjourney/dags/mjvideo_review/runs/{run_id}/tasks/choose)." in body
    assert "Prompt: **a lighthouse on a cliff at night, waves crashing**" in responder.seen["approve"]["body"]
    summary = xcom_value(run, "choose", key="mj_task")
    assert (summary["id"], summary["status"]) == (generate, "SUCCESS")
    # Both videos saved; nothing secret anywhere the person or the view can see.
    assert len(list(tmp_path.rglob("*.mp4"))) == 8
    assert SECRET_KEY not in json.dumps([responder.seen, summary])


CHOOSE_SEVERAL = """
import pendulum
from airflow.sdk import DAG

from airflow_provider_mjvideo.operators.download import DownloadVideoOperator
from airflow_provider_mjvideo.operators.review import ChooseClipOperator
from airflow_provider_mjvideo.operators.video import SubmitVideoOperator

with DAG("mjvideo_choose_several", schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC")) as dag:
    generate = SubmitVideoOperator(
        task_id="generate", prompt="two foxes", image="https://cdn.example.com/f.png",
        extra_body={"batchSize": 2}, wait_for_completion=True, poll_interval=0.1,
    )
    choose = ChooseClipOperator(task_id="choose", mj_task_id=generate.output, multiple=True, defaults=[0, 1])
    save = DownloadVideoOperator(task_id="save", mj_task_id=generate.output, destination="%s", indexes=choose.output)
"""


def test_several_clips_chosen_come_back_as_a_list_for_a_download(
    airflow_api: Any, run_dag: Any, emulator: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    module = write_dag(
        tmp_path / "dags", monkeypatch, "choose_several.py", CHOOSE_SEVERAL % (tmp_path / "out").as_uri()
    )
    statuses: list[int] = []

    def offer_a_clip_the_video_lacks(detail: dict[str, Any]) -> None:
        client = airflow_api.client("admin", cookie=False)
        statuses.append(client.patch(responder.route(detail), json={"chosen_options": ["clip 3"]}).status_code)

    with HitlResponder(
        airflow_api,
        "mjvideo_choose_several",
        {"choose": ["clip 1", "clip 0"]},
        before_answer=offer_a_clip_the_video_lacks,
    ) as responder:
        run = run_dag(module.dag)

    assert str(run.state) == "success"
    assert responder.seen["choose"]["options"] == ["clip 0", "clip 1"]  # the video has two clips only
    assert statuses == [400]
    assert xcom_value(run, "choose") == [1, 0]
    assert [entry["index"] for entry in xcom_value(run, "save")] == [1, 0]


NOT_A_FINISHED_VIDEO = """
import pendulum
from airflow.sdk import DAG

from airflow_provider_mjvideo.operators.review import ChooseClipOperator

with DAG("mjvideo_choose_wrong", schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC")) as dag:
    ChooseClipOperator(task_id="choose", mj_task_id="%s", defaults=%s)
"""


@pytest.mark.parametrize(
    ("what", "defaults", "message"),
    [
        ("running", "None", "not finished: wait for it (MidjourneyTaskSensor) before asking for clips to choose from"),
        ("image", "None", "Invalid parameter 'mj_task_id': task {id} is an IMAGINE task: it made pictures, not video"),
        ("two clips", "3", "Invalid parameter 'defaults': chooses clip 3, but task {id} has 2 clip(s)"),
    ],
)
def test_a_task_that_is_not_a_finished_video_fails_before_anyone_is_asked(
    airflow_api: Any,
    run_dag: Any,
    emulator: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capfd: Any,
    caplog: Any,
    what: str,
    defaults: str,
    message: str,
):
    emulator.config.video_duration = 3600  # nothing finishes unless the test says so
    headers = {"Authorization": f"Bearer {SECRET_KEY}"}
    if what == "image":
        route, body = "imagine", {"prompt": "a red fox"}
    else:
        route = "video"
        body = {"prompt": "a fox", "image": "https://cdn.example.com/f.png", "motion": "low", "batchSize": 2}
    answer = requests.post(f"{emulator.url}/mj/submit/{route}", json=body, headers=headers, timeout=5)
    mj_task_id = answer.json()["result"]
    if what != "running":
        emulator.complete_task(mj_task_id)
    module = write_dag(tmp_path / "dags", monkeypatch, "wrong.py", NOT_A_FINISHED_VIDEO % (mj_task_id, defaults))

    with HitlResponder(airflow_api, "mjvideo_choose_wrong", {"choose": ["clip 0"]}) as responder:
        run = run_dag(module.dag)

    assert str(run.state) == "failed"
    assert responder.seen == {}  # nobody was asked
    assert message.format(id=mj_task_id) in "\n".join(capfd.readouterr()) + caplog.text
