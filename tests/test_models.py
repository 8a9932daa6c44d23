"""Tolerant parsing of task objects in every shape the servers send."""

from __future__ import annotations

import json
from datetime import timezone

import pytest

from airflow_provider_mjvideo.exceptions import MidjourneyResponseError
from airflow_provider_mjvideo.models import MidjourneyTask, TaskStatus, extract_video_urls

BASE = {
    "id": "1754211234567123456",
    "action": "VIDEO",
    "status": "IN_PROGRESS",
    "progress": "56%",
    "prompt": "a red fox",
    "submitTime": 1754211234567,
    "startTime": 1754211236001,
    "finishTime": None,
    "imageUrl": "https://cdn.example/first.png",
    "failReason": None,
    "botType": "MID_JOURNEY",
    "nonce": "x",
}
URLS = [f"https://cdn.example/video/JOB/0_{i}.mp4" for i in range(4)]


def test_in_progress_task_fields():
    task = MidjourneyTask.from_api(BASE)
    assert task.id == "1754211234567123456"
    assert task.status is TaskStatus.IN_PROGRESS
    assert task.progress == 56
    assert task.video_urls == ()
    assert task.image_url == "https://cdn.example/first.png"
    assert task.submit_time is not None
    assert task.submit_time.tzinfo is not None
    assert task.submit_time.astimezone(timezone.utc).timestamp() == pytest.approx(1754211234.567)
    assert task.finish_time is None
    assert task.raw["botType"] == "MID_JOURNEY"


def test_task_is_immutable():
    task = MidjourneyTask.from_api(BASE)
    with pytest.raises(AttributeError):
        task.status = TaskStatus.SUCCESS  # type: ignore[misc]
    with pytest.raises(TypeError):
        task.raw["id"] = "other"  # type: ignore[index]


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"videoUrls": [{"url": u, "thumbnail": u + ".jpg"} for u in URLS]}, URLS),
        ({"videoUrls": URLS}, URLS),
        ({"videoUrl": URLS[0]}, URLS[:1]),
        ({"video_urls": json.dumps(URLS)}, URLS),
        ({"video_urls": URLS}, URLS),
        ({"imageUrl": "https://cdn.example/v.mp4?ex=123"}, ["https://cdn.example/v.mp4?ex=123"]),
        ({"imageUrl": "https://cdn.example/v.png"}, []),
        ({"videoUrls": [], "videoUrl": URLS[1]}, [URLS[1]]),
        ({"videoUrls": [{"url": ""}, None, {"thumbnail": "t"}], "videoUrl": ""}, []),
        ({"video_urls": "not json ["}, []),
    ],
)
def test_video_urls_found_wherever_they_hide(fields, expected):
    raw = {**BASE, "status": "SUCCESS", "imageUrl": None, **fields}
    assert extract_video_urls(raw) == expected
    assert list(MidjourneyTask.from_api(raw).video_urls) == expected


@pytest.mark.parametrize(
    ("raw_status", "expected"),
    [
        ("NOT_START", TaskStatus.NOT_START),
        ("SUBMITTED", TaskStatus.SUBMITTED),
        ("IN_PROGRESS", TaskStatus.IN_PROGRESS),
        ("MODAL", TaskStatus.MODAL),
        ("SUCCESS", TaskStatus.SUCCESS),
        ("FAILURE", TaskStatus.FAILURE),
        ("CANCEL", TaskStatus.CANCEL),
        ("", TaskStatus.UNKNOWN),
        (None, TaskStatus.UNKNOWN),
        ("RETRYING_UPSTREAM", TaskStatus.UNKNOWN),
        ("success", TaskStatus.SUCCESS),
    ],
)
def test_status_parsing(raw_status, expected):
    task = MidjourneyTask.from_api({**BASE, "status": raw_status})
    assert task.status is expected
    assert task.raw_status == (raw_status or "")


@pytest.mark.parametrize(
    ("status", "pending", "terminal", "failure", "dead"),
    [
        (TaskStatus.NOT_START, True, False, False, False),
        (TaskStatus.SUBMITTED, True, False, False, False),
        (TaskStatus.IN_PROGRESS, True, False, False, False),
        (TaskStatus.UNKNOWN, True, False, False, False),
        (TaskStatus.SUCCESS, False, True, False, False),
        (TaskStatus.MODAL, False, True, True, False),
        (TaskStatus.FAILURE, False, True, True, True),
        (TaskStatus.CANCEL, False, True, True, True),
    ],
)
def test_status_groups(status, pending, terminal, failure, dead):
    assert (status.is_pending, status.is_terminal, status.is_failure, status.is_dead) == (
        pending,
        terminal,
        failure,
        dead,
    )


@pytest.mark.parametrize(
    ("progress", "expected"), [("0%", 0), ("100%", 100), ("", 0), (None, 0), ("abc", 0), (42, 42), ("150%", 100)]
)
def test_progress_parsing(progress, expected):
    assert MidjourneyTask.from_api({**BASE, "progress": progress}).progress == expected


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"parentId": "17960000000000001"}, "17960000000000001"),
        ({"properties": {"parentId": 17960000000000002}}, "17960000000000002"),
        ({"parentId": "1", "properties": {"parentId": "2"}}, "1"),
        ({"properties": {"finalPrompt": "a red fox"}}, None),
        ({"properties": "not an object"}, None),
        ({}, None),
    ],
)
def test_parent_id_found_at_the_top_or_in_properties(fields, expected):
    assert MidjourneyTask.from_api({**BASE, **fields}).parent_id == expected


@pytest.mark.parametrize("value", [None, 0, "0", "", "garbage", False])
def test_unset_times_are_none(value):
    assert MidjourneyTask.from_api({**BASE, "finishTime": value, "startTime": value}).finish_time is None


def test_integer_id_becomes_exact_string():
    big = 1754211234567123456789  # longer than 2**53: must not pass through a float
    assert MidjourneyTask.from_api({**BASE, "id": big}).id == str(big)


@pytest.mark.parametrize("raw", [None, [], "text", 3, {"status": "SUCCESS"}, {"id": ""}])
def test_unusable_objects_raise_a_clear_error(raw):
    with pytest.raises(MidjourneyResponseError, match=r"Task object|Expected a task object"):
        MidjourneyTask.from_api(raw)


def test_wrong_types_are_tolerated():
    raw = {**BASE, "progress": ["x"], "videoUrls": "https://cdn.example/a.mp4", "failReason": 12, "prompt": 7}
    task = MidjourneyTask.from_api(raw)
    assert task.progress == 0
    assert task.video_urls == ("https://cdn.example/a.mp4",)
    assert task.fail_reason == "12"


def test_summary_is_json_serialisable_and_complete():
    raw = {**BASE, "status": "SUCCESS", "finishTime": 1754211299000, "videoUrls": URLS, "state": "airflow:x"}
    summary = MidjourneyTask.from_api(raw).to_summary()
    assert json.loads(json.dumps(summary)) == summary
    assert summary["video_urls"] == URLS
    assert summary["status"] == "SUCCESS"
    assert summary["progress"] == 100
    assert summary["finish_time"].startswith("2025-08-03T")
    assert set(summary) >= {"id", "status", "progress", "video_urls", "image_url", "fail_reason", "prompt"}


@pytest.mark.parametrize(
    ("fields", "error", "message"),
    [
        (
            {"status": "FAILURE", "failReason": "banned"},
            "MidjourneyTaskFailedError",
            "ended FAILURE: banned; it has no clips to choose from",
        ),
        ({"status": "MODAL"}, "MidjourneyTaskFailedError", "ended MODAL; it has no clips to choose from"),
        ({"status": "IN_PROGRESS"}, "MidjourneyTaskNotReadyError", "is IN_PROGRESS (56%), not finished"),
        ({"status": "SUCCESS"}, "MidjourneyTaskNotReadyError", "is SUCCESS but has no video URLs yet"),
        (
            {"status": "SUCCESS", "action": "IMAGINE"},
            "MidjourneyValidationError",
            "is an IMAGINE task: it made pictures",
        ),
    ],
)
def test_finished_clips_says_why_a_task_has_none(fields, error, message):
    import airflow_provider_mjvideo.exceptions as exceptions

    task = MidjourneyTask.from_api({**BASE, **fields})
    with pytest.raises(getattr(exceptions, error), match=message.replace("(", r"\(").replace(")", r"\)")):
        task.finished_clips("to choose from")


def test_finished_clips_of_a_finished_video():
    task = MidjourneyTask.from_api({**BASE, "status": "SUCCESS", "videoUrls": [{"url": url} for url in URLS]})
    assert task.finished_clips("to choose from") == tuple(URLS)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (MidjourneyTask.from_api(BASE).to_summary(), True),
        ({"id": "1", "status": "SUCCESS", "video_urls": []}, True),
        ({"id": "", "status": "SUCCESS", "video_urls": []}, False),
        ({"id": 1, "status": "SUCCESS", "video_urls": []}, False),
        ({"id": "1", "status": "SUCCESS"}, False),
        ("1754211234567123456", False),
        ([{"index": 0, "path": "file:///x"}], False),
        (None, False),
    ],
)
def test_is_task_summary(value, expected):
    from airflow_provider_mjvideo.models import is_task_summary

    assert is_task_summary(value) is expected
