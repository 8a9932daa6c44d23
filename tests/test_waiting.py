"""
What a task's status means for a waiter: ``WaitTracker``, ``result_or_raise``, ``status_for_resume``, ``resume_action``.

Pure decisions, specified with an injected clock (every ``observe`` gets its ``now``): no server, no sleeping.
The hook, the sensor and the trigger only feed these functions what they fetched; their own tests check that
wiring against the emulator.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from airflow.providers.common.compat.sdk import AirflowFailException

from airflow_provider_mjvideo.exceptions import (
    MidjourneyApiError,
    MidjourneyAuthError,
    MidjourneyBannedPromptError,
    MidjourneyConfigurationError,
    MidjourneyConnectionError,
    MidjourneyError,
    MidjourneyNotFoundError,
    MidjourneyPermanentError,
    MidjourneyQueueFullError,
    MidjourneyRateLimitError,
    MidjourneyRejectedError,
    MidjourneyResponseError,
    MidjourneyServerError,
    MidjourneySubmitOutcomeUnknownError,
    MidjourneyTaskFailedError,
    MidjourneyTransientError,
    MidjourneyValidationError,
    MidjourneyWaitTimeoutError,
)
from airflow_provider_mjvideo.models import MidjourneyTask
from airflow_provider_mjvideo.waiting import (
    DEFAULT_MISSING_URLS_GRACE,
    DEFAULT_NOT_FOUND_GRACE,
    STATUS_NOT_FOUND,
    STATUS_UNREACHABLE,
    ResumeAction,
    WaitDecision,
    WaitOutcome,
    WaitTracker,
    result_or_raise,
    resume_action,
    status_for_resume,
)

ID = "17960000000000001"
#: When the wait started (epoch seconds); every ``now`` below is an offset from it.
T0 = 1_800_000_000.0
NOT_FOUND_GRACE = 60.0
MISSING_URLS_GRACE = 30.0
URLS = [f"https://cdn.example.com/video/{ID}/{i}.mp4" for i in range(4)]
MODAL_REASON = (
    "the task waits for a manual confirmation (/mj/submit/modal) and will not finish by itself; "
    "the submitting operator's modal_prompt confirms it"
)


def task(status: str | None, progress: str = "0%", **fields: Any) -> MidjourneyTask:
    """The task as a server reports it (parsed like every answer)."""
    return MidjourneyTask.from_api({"id": ID, "status": status, "progress": progress, **fields})


@pytest.fixture
def tracker() -> WaitTracker:
    """A wait that began at ``T0``, without a deadline."""
    return WaitTracker(ID, started_at=T0, not_found_grace=NOT_FOUND_GRACE, missing_urls_grace=MISSING_URLS_GRACE)


def test_the_default_graces_are_a_minute():
    tracker = WaitTracker(ID)
    assert (tracker.not_found_grace, tracker.missing_urls_grace, tracker.deadline) == (
        DEFAULT_NOT_FOUND_GRACE,
        DEFAULT_MISSING_URLS_GRACE,
        None,
    )
    assert DEFAULT_NOT_FOUND_GRACE == DEFAULT_MISSING_URLS_GRACE == 60.0


# ------------------------------------------------------------------------------------------ one observation


@pytest.mark.parametrize(
    ("seen", "outcome", "message"),
    [
        pytest.param(task("NOT_START"), WaitOutcome.PENDING, f"task {ID} is NOT_START at 0%", id="not-start"),
        pytest.param(task("SUBMITTED"), WaitOutcome.PENDING, f"task {ID} is SUBMITTED at 0%", id="submitted"),
        pytest.param(
            task("IN_PROGRESS", "56%"), WaitOutcome.PENDING, f"task {ID} is IN_PROGRESS at 56%", id="in-progress"
        ),
        pytest.param(
            task(""), WaitOutcome.PENDING, f"task {ID} is status not reported yet at 0%", id="blank-status-newapi"
        ),
        pytest.param(task(None), WaitOutcome.PENDING, f"task {ID} is status not reported yet at 0%", id="no-status"),
        pytest.param(
            task("RETRYING_UPSTREAM", "12%"),
            WaitOutcome.PENDING,
            f"task {ID} has a status this provider does not know ('RETRYING_UPSTREAM'); treating it as pending",
            id="unknown-status",
        ),
        pytest.param(
            task("SUCCESS", videoUrls=URLS),
            WaitOutcome.SUCCESS,
            f"Midjourney task {ID} succeeded with 4 video URL(s)",
            id="success-with-urls",
        ),
        pytest.param(
            task("SUCCESS", videoUrl=URLS[0]),
            WaitOutcome.SUCCESS,
            f"Midjourney task {ID} succeeded with 1 video URL(s)",
            id="success-with-one-url",
        ),
        pytest.param(
            task("SUCCESS"),
            WaitOutcome.PENDING,
            f"task {ID} is SUCCESS but has no video URL yet",
            id="success-without-urls",
        ),
        pytest.param(
            task("FAILURE", failReason="Prompt flagged by moderation"),
            WaitOutcome.FAILURE,
            f"Midjourney task {ID} ended FAILURE: Prompt flagged by moderation",
            id="failure-with-reason",
        ),
        pytest.param(
            task("FAILURE"),
            WaitOutcome.FAILURE,
            f"Midjourney task {ID} ended FAILURE: no reason given",
            id="failure-without-reason",
        ),
        pytest.param(
            task("CANCEL"), WaitOutcome.CANCEL, f"Midjourney task {ID} ended CANCEL: no reason given", id="cancel"
        ),
        pytest.param(
            task("CANCEL", failReason="Cancelled by the account owner"),
            WaitOutcome.CANCEL,
            f"Midjourney task {ID} ended CANCEL: Cancelled by the account owner",
            id="cancel-with-reason",
        ),
        pytest.param(task("MODAL"), WaitOutcome.MODAL, f"Midjourney task {ID} ended MODAL: {MODAL_REASON}", id="modal"),
        pytest.param(
            task("MODAL", failReason="Needs a region to be chosen"),
            WaitOutcome.MODAL,
            f"Midjourney task {ID} ended MODAL: Needs a region to be chosen",
            id="modal-with-reason",
        ),
    ],
)
def test_what_one_observation_of_each_status_means(tracker, seen, outcome, message):
    decision = tracker.observe(seen, now=T0 + 1)

    assert decision.outcome is outcome
    assert decision.message == message
    assert decision.done is (outcome is not WaitOutcome.PENDING)
    assert decision.task is seen
    assert decision.progress_changed is True  # the first look is always news
    assert decision.error is None


@pytest.mark.parametrize(
    ("outcome", "done"),
    [(WaitOutcome.PENDING, False), *[(outcome, True) for outcome in WaitOutcome if outcome is not WaitOutcome.PENDING]],
    ids=lambda value: value.value if isinstance(value, WaitOutcome) else str(value),
)
def test_every_outcome_but_pending_ends_the_wait(outcome, done):
    assert WaitDecision(outcome, "m").done is done


# ------------------------------------------------------------------------------------------ what is news


@pytest.mark.parametrize(
    ("observations", "changed"),
    [
        pytest.param([("IN_PROGRESS", "10%"), ("IN_PROGRESS", "10%")], [True, False], id="same-twice"),
        pytest.param([("IN_PROGRESS", "10%"), ("IN_PROGRESS", "11%")], [True, True], id="progress-moved"),
        pytest.param([("SUBMITTED", "0%"), ("IN_PROGRESS", "0%")], [True, True], id="status-moved"),
        pytest.param(
            [("IN_PROGRESS", "10%"), None, ("IN_PROGRESS", "10%")],
            [True, False, False],
            id="an-unknown-id-in-between-is-no-news-and-resets-nothing",
        ),
        pytest.param([("", ""), ("", ""), ("SUBMITTED", "0%")], [True, False, True], id="blank-then-submitted"),
        pytest.param([("SUCCESS", "100%"), ("SUCCESS", "100%")], [True, False], id="success-without-urls-logged-once"),
    ],
)
def test_progress_changed_only_when_status_or_progress_differs_from_the_last_look(tracker, observations, changed):
    seen = [
        tracker.observe(None if observed is None else task(*observed), now=T0 + 1 + step).progress_changed
        for step, observed in enumerate(observations)
    ]
    assert seen == changed


def test_a_failed_poll_in_between_is_no_news_and_resets_nothing(tracker):
    assert tracker.observe(task("IN_PROGRESS", "40%"), now=T0 + 1).progress_changed is True
    assert tracker.observe_error(MidjourneyServerError("HTTP 503"), now=T0 + 2).progress_changed is False
    assert tracker.observe(task("IN_PROGRESS", "40%"), now=T0 + 3).progress_changed is False


def test_an_unknown_status_is_announced_once_per_status_then_reported_like_any_other(tracker):
    decisions = [
        tracker.observe(task(status, progress), now=T0 + step)
        for step, (status, progress) in enumerate(
            [("RETRYING_UPSTREAM", "0%"), ("RETRYING_UPSTREAM", "0%"), ("RETRYING_UPSTREAM", "20%"), ("QUEUED", "20%")]
        )
    ]

    assert [(d.outcome, d.message, d.progress_changed) for d in decisions] == [
        (
            WaitOutcome.PENDING,
            f"task {ID} has a status this provider does not know ('RETRYING_UPSTREAM'); treating it as pending",
            True,
        ),
        (WaitOutcome.PENDING, f"task {ID} is RETRYING_UPSTREAM at 0%", False),
        (WaitOutcome.PENDING, f"task {ID} is RETRYING_UPSTREAM at 20%", True),
        (
            WaitOutcome.PENDING,
            f"task {ID} has a status this provider does not know ('QUEUED'); treating it as pending",
            True,
        ),
    ]


# ------------------------------------------------------------------------------------------ graces


@pytest.mark.parametrize(
    ("unknown_for", "outcome", "message"),
    [
        (0.0, WaitOutcome.PENDING, f"the server does not know task {ID} yet (0 s after submit)"),
        (10.0, WaitOutcome.PENDING, f"the server does not know task {ID} yet (10 s after submit)"),
        (NOT_FOUND_GRACE - 0.01, WaitOutcome.PENDING, f"the server does not know task {ID} yet (60 s after submit)"),
        (
            NOT_FOUND_GRACE,
            WaitOutcome.ERROR,
            f"Midjourney task {ID} not found on the server 60 s after the wait started",
        ),
        (3600.0, WaitOutcome.ERROR, f"Midjourney task {ID} not found on the server 3600 s after the wait started"),
    ],
    ids=["at-start", "inside", "just-inside", "at-the-grace", "long-after"],
)
def test_an_unknown_id_is_pending_within_not_found_grace_of_the_start_then_an_error(
    tracker, unknown_for, outcome, message
):
    decision = tracker.observe(None, now=T0 + unknown_for)

    assert (decision.outcome, decision.message) == (outcome, message)
    assert decision.task is None
    if outcome is WaitOutcome.ERROR:  # the error travels typed: no receiver reads "not found" out of the words
        assert isinstance(decision.error, MidjourneyNotFoundError)
        assert str(decision.error) == message
    else:
        assert decision.error is None
    assert decision.progress_changed is False


def test_the_not_found_grace_counts_from_the_start_even_for_an_id_seen_before(tracker):
    assert not tracker.observe(task("IN_PROGRESS", "10%"), now=T0 + 1).done
    decision = tracker.observe(None, now=T0 + NOT_FOUND_GRACE + 1)  # the server forgot the task
    assert decision.outcome is WaitOutcome.ERROR


@pytest.mark.parametrize(
    ("first_seen", "now", "outcome", "message"),
    [
        (5.0, 5.0, WaitOutcome.PENDING, f"task {ID} is SUCCESS but has no video URL yet"),
        (5.0, 5.0 + MISSING_URLS_GRACE - 0.01, WaitOutcome.PENDING, f"task {ID} is SUCCESS but has no video URL yet"),
        (
            5.0,
            5.0 + MISSING_URLS_GRACE,
            WaitOutcome.ERROR,
            f"Midjourney task {ID} is SUCCESS but reported no video URL for 30 s",
        ),
        # The grace counts from the first SUCCESS without URLs, not from the start of the wait.
        (500.0, 500.0 + MISSING_URLS_GRACE - 1, WaitOutcome.PENDING, f"task {ID} is SUCCESS but has no video URL yet"),
        (
            500.0,
            600.0,
            WaitOutcome.ERROR,
            f"Midjourney task {ID} is SUCCESS but reported no video URL for 100 s",
        ),
    ],
    ids=["first-look", "just-inside", "at-the-grace", "late-success-inside", "late-success-past"],
)
def test_success_without_urls_is_pending_within_missing_urls_grace_of_the_first_such_look(
    tracker, first_seen, now, outcome, message
):
    tracker.observe(task("IN_PROGRESS", "99%"), now=T0 + 1)
    tracker.observe(task("SUCCESS"), now=T0 + first_seen)
    decision = tracker.observe(task("SUCCESS"), now=T0 + now)

    assert (decision.outcome, decision.message) == (outcome, message)
    assert decision.task is not None
    assert decision.task.status.value == "SUCCESS"
    assert decision.error is None  # result_or_raise makes it a plain (retryable) MidjourneyError


def test_urls_arriving_within_the_grace_make_it_a_success(tracker):
    tracker.observe(task("SUCCESS"), now=T0 + 10)
    decision = tracker.observe(task("SUCCESS", videoUrls=URLS), now=T0 + 10 + MISSING_URLS_GRACE - 1)
    assert decision.outcome is WaitOutcome.SUCCESS
    assert decision.task is not None
    assert list(decision.task.video_urls) == URLS


# ------------------------------------------------------------------------------------------ deadlines


DEADLINE = 100.0


@pytest.fixture
def deadline_tracker() -> WaitTracker:
    """A wait that began at ``T0`` and times out at ``T0 + DEADLINE``."""
    return WaitTracker(
        ID,
        started_at=T0,
        deadline=T0 + DEADLINE,
        not_found_grace=NOT_FOUND_GRACE,
        missing_urls_grace=MISSING_URLS_GRACE,
    )


@pytest.mark.parametrize(
    ("seen", "now", "outcome", "message"),
    [
        (task("IN_PROGRESS", "56%"), DEADLINE - 0.01, WaitOutcome.PENDING, f"task {ID} is IN_PROGRESS at 56%"),
        (
            task("IN_PROGRESS", "56%"),
            DEADLINE,
            WaitOutcome.TIMEOUT,
            f"Timed out waiting for Midjourney task {ID} (task {ID} is IN_PROGRESS at 56%)",
        ),
        (
            task("SUCCESS"),
            DEADLINE + 1,
            WaitOutcome.TIMEOUT,
            f"Timed out waiting for Midjourney task {ID} (task {ID} is SUCCESS but has no video URL yet)",
        ),
        # A finished task wins over a deadline that passed: what it ended with is the answer.
        (task("SUCCESS", videoUrls=URLS), DEADLINE + 50, WaitOutcome.SUCCESS, None),
        (task("FAILURE"), DEADLINE + 50, WaitOutcome.FAILURE, None),
        (task("MODAL"), DEADLINE + 50, WaitOutcome.MODAL, None),
    ],
    ids=["pending-before", "pending-at-deadline", "urls-still-missing", "success-late", "failure-late", "modal-late"],
)
def test_the_deadline_times_out_a_pending_task_only(deadline_tracker, seen, now, outcome, message):
    decision = deadline_tracker.observe(seen, now=T0 + now)

    assert decision.outcome is outcome
    if message is not None:
        assert decision.message == message
    assert decision.task is seen


@pytest.mark.parametrize(
    ("started_before", "outcome", "message"),
    [
        (
            0.0,
            WaitOutcome.TIMEOUT,
            f"Timed out waiting for Midjourney task {ID} (the server does not know task {ID} yet (20 s after submit))",
        ),
        (
            NOT_FOUND_GRACE,
            WaitOutcome.ERROR,
            f"Midjourney task {ID} not found on the server 80 s after the wait started",
        ),
    ],
    ids=["unknown-within-grace-times-out", "unknown-past-grace-is-not-found"],
)
def test_an_unknown_id_at_the_deadline(started_before, outcome, message):
    tracker = WaitTracker(ID, started_at=T0 - started_before, deadline=T0 + 20, not_found_grace=NOT_FOUND_GRACE)
    decision = tracker.observe(None, now=T0 + 20)
    assert (decision.outcome, decision.message) == (outcome, message)


def test_without_a_deadline_a_pending_task_is_waited_on_forever(tracker):
    assert tracker.observe(task("IN_PROGRESS", "1%"), now=T0 + 10 * 365 * 86400).outcome is WaitOutcome.PENDING


# ------------------------------------------------------------------------------------------ failed polls


TRANSIENT_ERRORS = [
    MidjourneyServerError("Server error on fetch (HTTP 503)"),
    MidjourneyRateLimitError("Rate limited on fetch (HTTP 429)", safe_to_resend=True, retry_after=2.0),
    MidjourneyConnectionError("Network error on fetch: ReadTimeout"),
    MidjourneyResponseError("Could not parse the answer to fetch"),
    MidjourneyQueueFullError("Queue full", safe_to_resend=True),
]
PERMANENT_ERRORS = [
    MidjourneyAuthError("Authentication failed for fetch", http_status=401),
    MidjourneyConfigurationError("Connection 'x' is not defined"),
    MidjourneyNotFoundError("no such route", http_status=404),
    MidjourneyRejectedError("The server rejected fetch", http_status=400),
    MidjourneyValidationError("mj_task_id", "must not contain '/'"),
]
#: Neither family: the hook does not retry them, but a wait keeps going (the next poll may work).
OTHER_ERRORS = [MidjourneyApiError("gateway error", code=5), MidjourneyError("something else")]


def _name(error: MidjourneyError) -> str:
    return type(error).__name__


@pytest.mark.parametrize("error", TRANSIENT_ERRORS + OTHER_ERRORS, ids=_name)
def test_a_failed_poll_that_may_pass_keeps_the_wait_going_until_the_deadline(deadline_tracker, error):
    before = deadline_tracker.observe_error(error, now=T0 + DEADLINE - 0.01)
    at = deadline_tracker.observe_error(error, now=T0 + DEADLINE)

    assert (before.outcome, before.message) == (WaitOutcome.PENDING, f"poll failed, will retry: {error}")
    assert (at.outcome, at.message) == (
        WaitOutcome.TIMEOUT,
        f"Timed out waiting for Midjourney task {ID} (last poll failed: {error})",
    )
    assert (before.task, before.error, at.task, at.error) == (None, None, None, None)


@pytest.mark.parametrize("error", PERMANENT_ERRORS, ids=_name)
@pytest.mark.parametrize("now", [T0 + 1, T0 + DEADLINE + 1], ids=["before-deadline", "after-deadline"])
def test_a_permanent_poll_error_ends_the_wait_and_keeps_its_type(deadline_tracker, error, now):
    decision = deadline_tracker.observe_error(error, now=now)

    assert decision.outcome is WaitOutcome.ERROR
    assert decision.message == f"Polling Midjourney task {ID} failed: {error}"
    assert decision.error is error
    assert decision.task is None


def test_the_error_tables_hold_what_they_say():
    """The tables of failed polls above are sorted into the right families."""
    assert all(isinstance(error, MidjourneyTransientError) for error in TRANSIENT_ERRORS)
    assert all(isinstance(error, MidjourneyPermanentError) for error in PERMANENT_ERRORS)
    assert not any(isinstance(error, (MidjourneyTransientError, MidjourneyPermanentError)) for error in OTHER_ERRORS)


# ------------------------------------------------------------------------------------------ trigger events


def _success() -> WaitDecision:
    return WaitTracker(ID, started_at=T0).observe(task("SUCCESS", videoUrls=URLS), now=T0 + 1)


def _failure() -> WaitDecision:
    return WaitTracker(ID, started_at=T0).observe(task("FAILURE", failReason="flagged"), now=T0 + 1)


def _timeout() -> WaitDecision:
    return WaitTracker(ID, started_at=T0, deadline=T0 + 1).observe(task("IN_PROGRESS", "40%"), now=T0 + 1)


def _not_found() -> WaitDecision:
    return WaitTracker(ID, started_at=T0, not_found_grace=1).observe(None, now=T0 + 5)


def _auth_error() -> WaitDecision:
    return WaitTracker(ID, started_at=T0).observe_error(MidjourneyAuthError("Authentication failed"), now=T0 + 1)


def _no_urls() -> WaitDecision:
    tracker = WaitTracker(ID, started_at=T0, missing_urls_grace=1)
    tracker.observe(task("SUCCESS"), now=T0 + 1)
    return tracker.observe(task("SUCCESS"), now=T0 + 5)


@pytest.mark.parametrize(
    ("decide", "status", "has_task", "error_type"),
    [
        (_success, "success", True, None),
        (_failure, "failure", True, None),
        (_timeout, "timeout", True, None),
        (_not_found, "error", False, "MidjourneyNotFoundError"),
        (_auth_error, "error", False, "MidjourneyAuthError"),
        (_no_urls, "error", True, None),
    ],
    ids=["success", "failure", "timeout", "not-found", "permanent-error", "no-urls"],
)
def test_to_event_is_plain_json_with_the_summary_and_the_error_type(decide, status, has_task, error_type):
    decision = decide()

    event = decision.to_event(ID)

    assert set(event) == {"status", "mj_task_id", "message", "task", "error_type", "error"}
    assert event["error"] == (decision.error.to_dict() if error_type else None)
    assert (event["error"] or {}).get("type") == error_type
    assert event["status"] == status == decision.outcome.value
    assert event["mj_task_id"] == ID
    assert event["message"] == decision.message
    assert event["task"] == (decision.task.to_summary() if has_task and decision.task else None)
    assert (event["task"] is not None) is has_task
    assert event["error_type"] == error_type
    assert json.loads(json.dumps(event)) == event  # Airflow 3.2+ accepts only JSON in trigger events


# ------------------------------------------------------------------------------------------ result_or_raise


def _event(status: str, message: str | None = "the message", **fields: Any) -> dict[str, Any]:
    return {"status": status, "mj_task_id": ID, "message": message, "task": None, "error_type": None, **fields}


SUMMARY = task("SUCCESS", videoUrls=URLS).to_summary()


NOT_FOUND_MESSAGE = f"Midjourney task {ID} not found on the server 61 s after the wait started"
NO_URLS_MESSAGE = f"Midjourney task {ID} is SUCCESS but reported no video URL for 61 s"


@pytest.mark.parametrize(
    ("event", "error", "permanent", "text"),
    [
        pytest.param(
            _event("failure", task=task("FAILURE").to_summary()),
            MidjourneyTaskFailedError,
            True,
            "the message",
            id="failure",
        ),
        pytest.param(
            _event("cancel", task=task("CANCEL").to_summary()),
            MidjourneyTaskFailedError,
            True,
            "the message",
            id="cancel",
        ),
        pytest.param(
            _event("modal", task=task("MODAL").to_summary()), MidjourneyTaskFailedError, True, "the message", id="modal"
        ),
        pytest.param(_event("timeout"), MidjourneyWaitTimeoutError, False, "the message", id="timeout"),
        pytest.param(
            _event("error", error_type="MidjourneyAuthError"), MidjourneyAuthError, True, "the message", id="auth"
        ),
        pytest.param(
            _event("error", error_type="MidjourneyBannedPromptError"),
            MidjourneyBannedPromptError,
            True,
            "the message",
            id="banned-prompt",
        ),
        pytest.param(
            _event("error", error_type="MidjourneyServerError"),
            MidjourneyServerError,
            False,
            "the message",
            id="transient-type-kept",
        ),
        pytest.param(
            _event("error", error_type="NotAnErrorOfThisProvider"), MidjourneyError, False, "the message", id="foreign"
        ),
        pytest.param(
            _event("error", NOT_FOUND_MESSAGE, error_type="MidjourneyNotFoundError"),
            MidjourneyNotFoundError,
            True,
            NOT_FOUND_MESSAGE,
            id="not-found",
        ),
        pytest.param(
            _event("error", NOT_FOUND_MESSAGE), MidjourneyError, False, NOT_FOUND_MESSAGE, id="untyped-words-not-read"
        ),
        pytest.param(_event("error", NO_URLS_MESSAGE), MidjourneyError, False, NO_URLS_MESSAGE, id="no-urls"),
        pytest.param(_event("success"), MidjourneyError, False, "the message", id="success-without-summary"),
        pytest.param(_event("pending"), MidjourneyError, False, "the message", id="pending"),
        pytest.param(
            _event("exploded", message=None),
            MidjourneyError,
            False,
            f"Midjourney task {ID} ended with status 'exploded'",
            id="unknown-status",
        ),
    ],
)
def test_result_or_raise_raises_for_every_unsuccessful_event(event, error, permanent, text):
    with pytest.raises(MidjourneyError) as info:
        result_or_raise(event)

    assert type(info.value) is error
    assert str(info.value) == text
    # Permanent errors fail the task at once; every other one leaves the task's retries to Airflow.
    assert isinstance(info.value, MidjourneyPermanentError) is permanent
    assert isinstance(info.value, AirflowFailException) is permanent


def test_result_or_raise_returns_the_summary_of_a_success():
    event = _event("success", task=SUMMARY)
    assert result_or_raise(event) is SUMMARY


@pytest.mark.parametrize(
    ("event", "status"),
    [
        (_event("failure", task=task("FAILURE").to_summary()), "FAILURE"),
        (_event("cancel", task=task("CANCEL").to_summary()), "CANCEL"),
        (_event("modal", task=task("MODAL").to_summary()), "MODAL"),
        (_event("failure"), "failure"),  # no summary: the event's own status
    ],
    ids=["failure", "cancel", "modal", "failure-without-summary"],
)
def test_a_task_failed_error_names_the_task_and_its_status(event, status):
    with pytest.raises(MidjourneyTaskFailedError) as info:
        result_or_raise(event)
    assert (info.value.mj_task_id, info.value.status) == (ID, status)


def test_a_timeout_error_names_the_task():
    with pytest.raises(MidjourneyWaitTimeoutError) as info:
        result_or_raise(_event("timeout"))
    assert info.value.mj_task_id == ID


def test_an_event_without_a_task_id_or_message_still_gives_a_sentence():
    with pytest.raises(MidjourneyError) as info:
        result_or_raise({"status": "error"})
    assert str(info.value) == "Midjourney task ? ended with status 'error'"


@pytest.mark.parametrize(
    ("decide", "error", "permanent"),
    [
        (_failure, MidjourneyTaskFailedError, True),
        (_timeout, MidjourneyWaitTimeoutError, False),
        (_not_found, MidjourneyNotFoundError, True),
        (_auth_error, MidjourneyAuthError, True),
        (_no_urls, MidjourneyError, False),
    ],
    ids=["failure", "timeout", "not-found", "permanent-poll-error", "no-urls"],
)
def test_what_a_finished_wait_raises_after_the_trip_through_a_trigger_event(decide, error, permanent):
    decision = decide()
    with pytest.raises(MidjourneyError) as info:
        result_or_raise(json.loads(json.dumps(decision.to_event(ID))))
    assert type(info.value) is error
    assert decision.message in str(info.value)
    assert isinstance(info.value, AirflowFailException) is permanent


def test_a_successful_wait_survives_the_trip_through_a_trigger_event():
    decision = _success()
    assert decision.task is not None
    assert result_or_raise(json.loads(json.dumps(decision.to_event(ID)))) == decision.task.to_summary()


# ------------------------------------------------------------------------------------------ a new try's stored task


@pytest.mark.parametrize(
    ("stored", "kwargs", "status", "action"),
    [
        pytest.param(task("IN_PROGRESS"), {}, "IN_PROGRESS", ResumeAction.REATTACH, id="in-progress"),
        pytest.param(task("SUBMITTED"), {}, "SUBMITTED", ResumeAction.REATTACH, id="submitted"),
        pytest.param(task("NOT_START"), {}, "NOT_START", ResumeAction.REATTACH, id="not-start"),
        pytest.param(task(""), {}, "UNKNOWN", ResumeAction.REATTACH, id="blank-status"),
        pytest.param(task("QUEUED_SOMEWHERE"), {}, "UNKNOWN", ResumeAction.REATTACH, id="new-status"),
        # MODAL waits for a human on the server; a new submission would not help.
        pytest.param(task("MODAL"), {}, "MODAL", ResumeAction.REATTACH, id="modal"),
        pytest.param(task("SUCCESS"), {}, "SUCCESS", ResumeAction.TAKE_FINISHED, id="success"),
        pytest.param(task("SUCCESS", videoUrls=URLS), {}, "SUCCESS", ResumeAction.TAKE_FINISHED, id="success-urls"),
        pytest.param(task("FAILURE"), {}, "FAILURE", ResumeAction.RESUBMIT, id="failure"),
        pytest.param(task("CANCEL"), {}, "CANCEL", ResumeAction.RESUBMIT, id="cancel"),
        pytest.param(
            None, {"submitted_at": T0, "now": T0 + 10}, "SUBMITTED", ResumeAction.REATTACH, id="unknown-id-fresh"
        ),
        pytest.param(
            None,
            {"submitted_at": T0, "now": T0 + NOT_FOUND_GRACE - 0.01},
            "SUBMITTED",
            ResumeAction.REATTACH,
            id="unknown-id-just-inside-grace",
        ),
        pytest.param(
            None,
            {"submitted_at": T0, "now": T0 + NOT_FOUND_GRACE},
            STATUS_NOT_FOUND,
            ResumeAction.RESUBMIT,
            id="unknown-id-at-the-grace",
        ),
        pytest.param(
            None, {"submitted_at": T0, "now": T0 + 1000}, STATUS_NOT_FOUND, ResumeAction.RESUBMIT, id="unknown-id-old"
        ),
        pytest.param(None, {"now": T0}, STATUS_NOT_FOUND, ResumeAction.RESUBMIT, id="unknown-id-no-submit-time"),
        *[
            pytest.param(
                None, {"error": error}, STATUS_UNREACHABLE, ResumeAction.REATTACH, id=f"unreachable-{_name(error)}"
            )
            for error in TRANSIENT_ERRORS
        ],
        pytest.param(
            task("FAILURE"),
            {"error": MidjourneyServerError("HTTP 503")},
            STATUS_UNREACHABLE,
            ResumeAction.REATTACH,
            id="the-error-wins-over-a-task",
        ),
    ],
)
def test_what_a_new_try_does_with_its_stored_task(stored, kwargs, status, action):
    seen = status_for_resume(stored, not_found_grace=NOT_FOUND_GRACE, **kwargs)
    assert seen == status
    assert resume_action(seen) is action


@pytest.mark.parametrize(
    "error",
    [*PERMANENT_ERRORS, *OTHER_ERRORS, MidjourneySubmitOutcomeUnknownError("maybe")],
    ids=_name,
)
def test_an_error_that_is_not_transient_while_checking_the_stored_task_is_raised(error):
    with pytest.raises(MidjourneyError) as info:
        status_for_resume(None, error=error, submitted_at=T0, now=T0 + 1)
    assert info.value is error


@pytest.mark.parametrize(
    ("status", "action"),
    [
        ("SUCCESS", ResumeAction.TAKE_FINISHED),
        ("FAILURE", ResumeAction.RESUBMIT),
        ("CANCEL", ResumeAction.RESUBMIT),
        (STATUS_NOT_FOUND, ResumeAction.RESUBMIT),
        ("MODAL", ResumeAction.REATTACH),
        ("IN_PROGRESS", ResumeAction.REATTACH),
        ("SUBMITTED", ResumeAction.REATTACH),
        ("NOT_START", ResumeAction.REATTACH),
        ("UNKNOWN", ResumeAction.REATTACH),
        (STATUS_UNREACHABLE, ResumeAction.REATTACH),
    ],
)
def test_only_a_dead_or_forgotten_task_is_paid_for_again(status, action):
    assert resume_action(status) is action
