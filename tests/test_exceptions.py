"""Errors survive the trip through a trigger event: JSON out, the same class, text and fields back."""

from __future__ import annotations

import inspect
import json

import pytest

from airflow_provider_mjvideo import exceptions
from airflow_provider_mjvideo.exceptions import (
    ERROR_CLASSES,
    MidjourneyAuthError,
    MidjourneyBannedPromptError,
    MidjourneyError,
    MidjourneyMediaUnavailableError,
    MidjourneyNotFoundError,
    MidjourneyQueueFullError,
    MidjourneyStorageReadError,
    MidjourneyTaskFailedError,
    MidjourneyValidationError,
    MidjourneyWaitTimeoutError,
    error_from_dict,
    shorten,
)

LONG = "x" * 500


@pytest.mark.parametrize(
    ("error", "fields"),
    [
        pytest.param(MidjourneyError("plain"), {}, id="base"),
        pytest.param(
            MidjourneyAuthError("Authentication failed", http_status=401, code=None, description="bad key"),
            {"http_status": 401, "description": "bad key"},
            id="auth",
        ),
        pytest.param(MidjourneyValidationError("index", "must be 0-3"), {"parameter": "index"}, id="validation"),
        pytest.param(
            MidjourneyBannedPromptError("Banned prompt", banned_word="boom", code=24),
            {"banned_word": "boom", "code": 24},
            id="banned",
        ),
        pytest.param(
            MidjourneyTaskFailedError("ended FAILURE", mj_task_id="17960000000000001", status="FAILURE"),
            {"mj_task_id": "17960000000000001", "status": "FAILURE"},
            id="task-failed",
        ),
        pytest.param(
            MidjourneyWaitTimeoutError("timed out", mj_task_id="17960000000000001"),
            {"mj_task_id": "17960000000000001"},
            id="timeout",
        ),
        pytest.param(
            MidjourneyQueueFullError("queue full", safe_to_resend=True, retry_after=2.5, code=23),
            {"safe_to_resend": True, "retry_after": 2.5, "code": 23},
            id="transient",
        ),
        pytest.param(MidjourneyMediaUnavailableError("gone", index=2, http_status=410), {"index": 2}, id="media"),
        pytest.param(
            MidjourneyStorageReadError("Cannot read 'image'", parameter="image"), {"parameter": "image"}, id="storage"
        ),
        pytest.param(
            MidjourneyNotFoundError("Not found", http_status=404, description=LONG),
            {"description": shorten(LONG)},
            id="long-description",
        ),
    ],
)
def test_an_error_comes_back_from_its_dict_unchanged(error: MidjourneyError, fields: dict) -> None:
    data = json.loads(json.dumps(error.to_dict()))

    rebuilt = error_from_dict(data)

    assert type(rebuilt) is type(error)
    assert str(rebuilt) == str(error)
    for name, value in fields.items():
        assert getattr(rebuilt, name) == value == getattr(error, name), name


def test_the_receiver_may_word_the_text_and_keeps_the_fields() -> None:
    error = MidjourneyAuthError("Authentication failed", http_status=403)

    rebuilt = error_from_dict(error.to_dict(), text="Polling Midjourney task 1 failed: Authentication failed")

    assert type(rebuilt) is MidjourneyAuthError
    assert str(rebuilt) == "Polling Midjourney task 1 failed: Authentication failed"
    assert rebuilt.http_status == 403


@pytest.mark.parametrize("name", ["NotAnErrorOfThisProvider", "AirflowException", "ValueError", "", None])
def test_a_name_outside_the_registry_gives_a_plain_error(name: str | None) -> None:
    rebuilt = error_from_dict({"type": name, "message": "something"})

    assert type(rebuilt) is MidjourneyError
    assert str(rebuilt) == "something"


def test_the_registry_holds_every_error_class_of_the_module() -> None:
    defined = {
        name
        for name, value in inspect.getmembers(exceptions, inspect.isclass)
        if issubclass(value, MidjourneyError) and value.__module__ == exceptions.__name__
    }

    assert set(ERROR_CLASSES) == defined
