"""The single validation path: every bad parameter gets an error naming it."""

from __future__ import annotations

from pathlib import Path, PurePosixPath

import pytest

from airflow_provider_mjvideo.exceptions import MidjourneyValidationError
from airflow_provider_mjvideo.submissions import build_video_request
from airflow_provider_mjvideo.validation import (
    UNRESOLVED,
    check_destination,
    check_max_file_bytes,
    check_positive_int,
    check_positive_number,
    is_unresolved,
)

IMAGE = "https://cdn.example/first.png"
DATA_URI = "data:image/png;base64,iVBORw0KGgo="

GOOD_NEW = {"prompt": "a fox", "image": IMAGE, "motion": "low"}
GOOD_EXTEND = {"prompt": "more fox", "action": "extend", "mj_task_id": "1754211234567123456", "index": 0}

BAD_CASES = [
    ("motion", {**GOOD_NEW, "motion": "medium"}),
    ("motion", {**GOOD_NEW, "motion": None}),
    ("image", {**GOOD_NEW, "image": "cdn.example/a.png"}),  # relative: not every worker can read it
    ("image", {**GOOD_NEW, "image": "not a url"}),
    ("image", {**GOOD_NEW, "image": "data:image/png,rawbytes"}),
    ("image", {**GOOD_NEW, "image": None}),
    ("image", {**GOOD_NEW, "image": ""}),
    ("prompt", {**GOOD_NEW, "prompt": ""}),
    ("prompt", {**GOOD_NEW, "prompt": "   \n\t"}),
    ("prompt", {**GOOD_NEW, "prompt": None}),
    ("action", {**GOOD_NEW, "action": "shorten"}),
    ("mj_task_id", {**GOOD_EXTEND, "mj_task_id": None}),
    ("index", {**GOOD_EXTEND, "index": None}),
    ("index", {**GOOD_EXTEND, "index": 4}),
    ("index", {**GOOD_EXTEND, "index": -1}),
    ("index", {**GOOD_EXTEND, "index": "x"}),
    ("index", {**GOOD_EXTEND, "index": 1.5}),
    ("index", {**GOOD_EXTEND, "index": True}),
    ("mj_task_id", {**GOOD_EXTEND, "mj_task_id": 1.7542112345671234e18}),
    ("mj_task_id", {**GOOD_EXTEND, "mj_task_id": "12/../34"}),
    ("mj_task_id", {**GOOD_NEW, "mj_task_id": "123"}),
    ("index", {**GOOD_NEW, "index": 1}),
    ("state", {**GOOD_NEW, "state": "x" * 300}),
    ("state", {**GOOD_NEW, "state": 12}),
    ("notify_hook", {**GOOD_NEW, "notify_hook": "not-a-url"}),
    ("notify_hook", {**GOOD_NEW, "notify_hook": "ftp://hooks.example/cb"}),
    ("extra_body", {**GOOD_NEW, "extra_body": ["batchSize", 2]}),
    ("extra_body", {**GOOD_NEW, "extra_body": {"prompt": "override"}}),
    ("extra_body", {**GOOD_NEW, "extra_body": {"batchSize": 3}}),
    ("extra_body", {**GOOD_NEW, "extra_body": {"loop": "yes"}}),
    ("extra_body.endImage", {**GOOD_NEW, "extra_body": {"endImage": "file:///etc/passwd"}}),
    ("extra_body", {**GOOD_NEW, "extra_body": {"x": object()}}),
]


@pytest.mark.parametrize(("parameter", "kwargs"), BAD_CASES, ids=[f"{p}-{i}" for i, (p, _) in enumerate(BAD_CASES)])
def test_bad_parameter_is_named(parameter, kwargs):
    with pytest.raises(MidjourneyValidationError) as info:
        build_video_request(**kwargs)
    assert info.value.parameter == parameter
    assert repr(parameter) in str(info.value)


def test_new_video_request_body():
    request = build_video_request(**GOOD_NEW, notify_hook="http://127.0.0.1:9/cb", state="s")
    assert request is not None
    assert request.to_body() == {
        "prompt": "a fox",
        "image": IMAGE,
        "motion": "low",
        "notifyHook": "http://127.0.0.1:9/cb",
        "state": "s",
    }


@pytest.mark.parametrize("index", [2, "2", " 2 "])
def test_extend_sends_task_id_camel_case_and_integer_index(index):
    request = build_video_request(**{**GOOD_EXTEND, "index": index})
    assert request is not None
    body = request.to_body()
    assert body["taskId"] == "1754211234567123456"
    assert body["task_id"] == "1754211234567123456"
    assert body["index"] == 2
    assert isinstance(body["index"], int)
    assert body["action"] == "extend"
    assert "image" not in body


def test_data_uri_and_extra_body_are_accepted():
    request = build_video_request(
        **{**GOOD_NEW, "image": DATA_URI}, extra_body={"batchSize": 1, "videoType": "vid_1.1_i2v_720", "loop": True}
    )
    assert request is not None
    assert request.to_body()["image"] == DATA_URI
    assert request.to_body()["batchSize"] == 1


def test_state_of_255_chars_is_accepted():
    assert build_video_request(**GOOD_NEW, state="x" * 255) is not None


def test_unresolved_values_are_skipped_at_parse_time_but_literals_still_checked():
    assert build_video_request("{{ params.p }}", "{{ params.img }}", "low", allow_unresolved=True) is None
    assert (
        build_video_request(
            "p", None, "low", action="extend", mj_task_id=UNRESOLVED, index="{{ 1 }}", allow_unresolved=True
        )
        is None
    )
    with pytest.raises(MidjourneyValidationError, match="motion"):
        build_video_request("{{ params.p }}", IMAGE, "medium", allow_unresolved=True)
    with pytest.raises(MidjourneyValidationError, match="index"):
        build_video_request("p", None, "low", action="extend", mj_task_id=UNRESOLVED, index=7, allow_unresolved=True)


def test_only_values_airflow_resolves_at_run_time_count_as_unresolved():
    import pendulum
    from airflow.providers.common.compat.sdk import ObjectStoragePath
    from airflow.sdk import DAG

    from airflow_provider_mjvideo.operators.video import SubmitVideoOperator

    with DAG("unresolved_probe", schedule=None, start_date=pendulum.datetime(2026, 1, 1), params={"i": IMAGE}) as dag:
        upstream = SubmitVideoOperator(task_id="submit", prompt="p", image=IMAGE)
    for later in (UNRESOLVED, "{{ params.i }}", "{% if x %}y{% endif %}", upstream.output, dag.param("i")):
        assert is_unresolved(later), later
    # Paths have a resolve() method too, but they are literal values.
    path = ObjectStoragePath("file:///data/frame.png", protocol="file")
    for literal in (IMAGE, PurePosixPath("/data/frame.png"), Path("/data/frame.png"), path, [upstream.output], {}):
        assert not is_unresolved(literal), literal


def test_jinja_text_is_an_ordinary_value_after_rendering():
    request = build_video_request("literally {{ braces }}", IMAGE, "low")
    assert request is not None
    assert request.prompt == "literally {{ braces }}"


@pytest.mark.parametrize("value", [0, -1, "abc", None, float("nan"), float("inf"), True])
def test_bad_intervals(value):
    with pytest.raises(MidjourneyValidationError, match="poll_interval"):
        check_positive_number("poll_interval", value)


@pytest.mark.parametrize("value", [0, -1, 1.5, "8.5", "-3", "", None, True, [8]])
def test_bad_positive_integers(value):
    with pytest.raises(MidjourneyValidationError, match=r"chunk_size.*must be a positive integer, got") as info:
        check_positive_int("chunk_size", value)
    assert info.value.parameter == "chunk_size"


@pytest.mark.parametrize(("value", "expected"), [(1, 1), (8.0, 8), ("8", 8), (" 25 ", 25)])
def test_positive_integers_from_templates_and_extras_are_read(value, expected):
    assert check_positive_int("chunk_size", value) == expected


def test_positive_integers_are_returned_and_the_unit_is_named_in_the_error():
    assert check_positive_int("chunk_size", 1) == 1
    assert check_max_file_bytes(1 << 30) == 1 << 30
    with pytest.raises(MidjourneyValidationError, match="positive integer number of bytes, got 0"):
        check_max_file_bytes(0)


@pytest.mark.parametrize(
    ("value", "uri"),
    [
        ("file:///data/mj/", "file:///data/mj/"),
        ("  s3://bucket/mj/ ", "s3://bucket/mj/"),
        ("/data/mj", "file:///data/mj"),
        (PurePosixPath("/data/mj"), "file:///data/mj"),
    ],
)
def test_destination_is_returned_as_a_uri(value, uri):
    assert check_destination(value) == uri


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("", "must be a non-empty storage URI such as file:///data/mj/"),
        ("   ", "must be a non-empty storage URI"),
        (None, "must be a non-empty storage URI"),
        (["/data"], "must be a non-empty storage URI"),
        ("data/mj", r"must be a URI \(file:///…, s3://…, gs://…\) or an absolute path"),
    ],
)
def test_bad_destinations(value, message):
    with pytest.raises(MidjourneyValidationError, match=message) as info:
        check_destination(value)
    assert info.value.parameter == "destination"
