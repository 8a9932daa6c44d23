"""Interpretation of every answer shape servers send, including malformed ones (pure functions)."""

from __future__ import annotations

import json
import math
import time
from datetime import datetime, timezone
from email.utils import format_datetime

import pytest

from airflow_provider_mjvideo.exceptions import (
    MAX_SERVER_TEXT,
    MidjourneyApiError,
    MidjourneyAuthError,
    MidjourneyError,
    MidjourneyNotFoundError,
    MidjourneyQueueFullError,
    MidjourneyRateLimitError,
    MidjourneyRejectedError,
    MidjourneyResponseError,
    MidjourneyServerError,
)
from airflow_provider_mjvideo.models import TaskStatus
from airflow_provider_mjvideo.responses import (
    ApiResponse,
    parse_fetch,
    parse_submit,
    parse_task_list,
    retry_after_seconds,
)

HTML = b"<html><head><title>502 Bad Gateway</title></head><body><h1>502 Bad Gateway</h1>nginx</body></html>"
TASK = {"id": "17956060615600001", "status": "IN_PROGRESS", "progress": "10%"}


def answer(status: int, body: object = b"", headers: dict[str, str] | None = None) -> ApiResponse:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return ApiResponse(status=status, body=raw, headers=headers or {}, what="test request")


@pytest.mark.parametrize(
    ("response", "error", "words"),
    [
        (answer(200, b"<html>login page</html>"), MidjourneyResponseError, "expected JSON"),
        (answer(200, b""), MidjourneyResponseError, "expected JSON"),
        (answer(200, b"null"), MidjourneyResponseError, "expected JSON"),
        (answer(200, b'{"code": 1, "result": "12'), MidjourneyResponseError, "expected JSON"),
        (answer(200, {"code": 1, "description": "ok"}), MidjourneyResponseError, "without a task id"),
        (answer(200, {"code": 1, "result": ""}), MidjourneyResponseError, "without a task id"),
        (answer(200, {"code": 1, "result": 1.5}), MidjourneyResponseError, "without a task id"),
        (answer(200, ["not", "an", "object"]), MidjourneyResponseError, "Unexpected answer"),
        (
            answer(200, {"success": False, "code": -1, "message": "Daily limit reached"}),
            MidjourneyRejectedError,
            "Daily limit",
        ),
        (
            answer(200, {"success": False, "code": -1, "message": "Concurrency limit"}),
            MidjourneyQueueFullError,
            "Concurrency",
        ),
        (
            answer(400, {"description": "bad index", "type": "upstream_error", "code": 4}),
            MidjourneyRejectedError,
            "bad index",
        ),
        (
            answer(401, {"error": {"message": "invalid token", "type": "new_api_error"}}),
            MidjourneyAuthError,
            "invalid token",
        ),
        (answer(403, b"Forbidden: IP not allowed"), MidjourneyAuthError, "IP not allowed"),
        (answer(401, b""), MidjourneyAuthError, "HTTP 401"),
        (answer(429, b""), MidjourneyRateLimitError, "HTTP 429"),
        (answer(500, {"code": 9, "description": "boom"}), MidjourneyServerError, "boom"),
        (answer(502, HTML), MidjourneyServerError, "502 Bad Gateway"),
        (answer(200, {"code": 42, "description": "strange"}), MidjourneyApiError, "code 42"),
    ],
)
def test_submit_answers(response, error, words):
    with pytest.raises(error) as info:
        parse_submit(response)
    assert words in str(info.value)
    assert "HTTP" in str(info.value)


def test_submit_accepts_integer_results_as_exact_strings():
    assert parse_submit(answer(200, b'{"code": 22, "result": 17956060615600001123}')) == "17956060615600001123"


def test_submit_accepts_a_code_sent_as_a_string():
    assert parse_submit(answer(200, {"code": "1", "result": "12"})) == "12"


def test_a_huge_body_is_cut_in_the_message():
    huge = b"x" * (10 * 1024 * 1024)
    with pytest.raises(MidjourneyServerError) as info:
        parse_submit(answer(500, huge))
    text = str(info.value)
    assert len(text) < MAX_SERVER_TEXT + 300
    assert "more chars" in text
    with pytest.raises(MidjourneyResponseError) as info2:
        parse_submit(answer(200, huge))
    assert len(str(info2.value)) < 500


@pytest.mark.parametrize(
    "response",
    [
        answer(204),
        answer(200, b""),
        answer(200, b"null"),
        answer(400, {"description": "task_no_found", "code": 4}),
        answer(404, {"code": 3, "description": "task not found"}),
    ],
)
def test_unknown_task_shapes_mean_none(response):
    assert parse_fetch(response) is None


@pytest.mark.parametrize(
    ("response", "error"),
    [
        (answer(200, b"<html>oops</html>"), MidjourneyResponseError),
        (answer(200, b'{"id": "1", "status": "SUC'), MidjourneyResponseError),
        (answer(200, [TASK]), MidjourneyResponseError),
        (answer(200, {"status": "SUCCESS"}), MidjourneyResponseError),
        (answer(503, HTML), MidjourneyServerError),
    ],
)
def test_fetch_errors(response, error):
    with pytest.raises(error):
        parse_fetch(response)


def test_fetch_tolerates_unknown_status_and_wrong_types():
    task = parse_fetch(answer(200, {**TASK, "status": "WARMING_UP", "progress": None, "videoUrls": 5, "x": {}}))
    assert task is not None
    assert task.status is TaskStatus.UNKNOWN
    assert task.progress == 0
    assert task.video_urls == ()


@pytest.mark.parametrize("body", [[TASK, None], {"result": [TASK]}, {"data": [TASK]}])
def test_list_shapes(body):
    assert [task.id for task in parse_task_list(answer(200, body))] == [TASK["id"]]


@pytest.mark.parametrize("body", [b"", b"null", b'{"code": 1}', b"[{"])
def test_list_garbage_is_a_response_error(body):
    with pytest.raises(MidjourneyResponseError):
        parse_task_list(answer(200, body))


def test_every_error_carries_status_code_and_description():
    with pytest.raises(MidjourneyError) as info:
        parse_submit(answer(400, {"code": 4, "description": "Parent task is not SUCCESS"}))
    error = info.value
    assert (error.http_status, error.code, error.description) == (400, 4, "Parent task is not SUCCESS")
    assert str(error) == (
        "The server rejected test request (HTTP 400, code 4, description: 'Parent task is not SUCCESS')"
    )


@pytest.mark.parametrize(("value", "expected"), [("3", 3.0), ("0.25", 0.25), (None, None), ("soon", None), ("-4", 0.0)])
def test_retry_after_parsing(value, expected):
    assert retry_after_seconds(value) == expected


def test_retry_after_http_date_in_the_past_means_now():
    assert retry_after_seconds("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0


@pytest.mark.parametrize("ahead", [1, 90, 3600])
def test_retry_after_http_date_in_the_future_is_the_seconds_until_then(ahead):
    # An HTTP date has whole seconds: name a whole second ``ahead`` of now, and bound the answer by the
    # clock read just before and just after the call (no sleeping, no frozen clock needed).
    before = time.time()
    when = math.floor(before) + ahead
    value = retry_after_seconds(format_datetime(datetime.fromtimestamp(when, timezone.utc), usegmt=True))
    after = time.time()

    assert value is not None
    assert when - after <= value <= when - before


def test_not_found_by_code_3_on_submit():
    with pytest.raises(MidjourneyNotFoundError):
        parse_submit(answer(404, {"code": 3, "description": "Parent task not found"}))
