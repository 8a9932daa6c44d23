"""
RetryPolicy: which failures the hook retries, how long it waits, when it gives up, and what it logs.

tenacity runs for real with its ``sleep`` injected (the waits are recorded, never slept); one test at the end
checks the hook's own retry log line against the emulator.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import pytest
import tenacity
from helpers import SECRET_KEY

from airflow_provider_mjvideo.exceptions import (
    MidjourneyApiError,
    MidjourneyAuthError,
    MidjourneyConnectionError,
    MidjourneyDownloadError,
    MidjourneyError,
    MidjourneyNotFoundError,
    MidjourneyQueueFullError,
    MidjourneyRateLimitError,
    MidjourneyRejectedError,
    MidjourneyResponseError,
    MidjourneyServerError,
    MidjourneySubmitOutcomeUnknownError,
    MidjourneyTaskFailedError,
    MidjourneyValidationError,
)
from airflow_provider_mjvideo.retrying import RETRY_AFTER_CEILING, RetryPolicy

WHAT = "fetch of task 17960000000000001"


@dataclass
class RecordingLogger:
    """A :class:`~airflow_provider_mjvideo.retrying.TaskLogger` that keeps every call."""

    calls: list[tuple[str, str, tuple[Any, ...]]] = field(default_factory=list)

    def info(self, msg: Any, /, *args: Any) -> None:
        self.calls.append(("info", msg, args))

    def warning(self, msg: Any, /, *args: Any) -> None:
        self.calls.append(("warning", msg, args))

    def lines(self) -> list[str]:
        return [msg % args for _level, msg, args in self.calls]


@dataclass
class Run:
    """One request under the policy: what it returned or raised, how often it was sent, what it waited."""

    calls: int = 0
    sleeps: list[float] = field(default_factory=list)
    logger: RecordingLogger = field(default_factory=RecordingLogger)
    result: Any = None
    error: BaseException | None = None


def run(policy: RetryPolicy, outcomes: list[Any], *, resend_safe_only: bool = False) -> Run:
    """
    Drive ``policy`` through tenacity: attempt ``n`` raises ``outcomes[n]`` if it is an exception, else returns it
    (the last outcome repeats). Sleeps are recorded instead of slept.
    """
    done = Run()

    def attempt() -> Any:
        outcome = outcomes[min(done.calls, len(outcomes) - 1)]
        done.calls += 1
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome

    retrying = tenacity.Retrying(
        sleep=done.sleeps.append,
        **policy.tenacity_kwargs(resend_safe_only=resend_safe_only, logger=done.logger, what=WHAT),
    )
    try:
        done.result = retrying(attempt)
    except BaseException as err:
        done.error = err
    return done


# ------------------------------------------------------------------------------------------ parameters


def test_the_defaults():
    assert RetryPolicy() == RetryPolicy(max_attempts=6, initial_delay=1.0, max_delay=30.0)
    assert RETRY_AFTER_CEILING == 300.0


BAD_PARAMETERS = [
    ({"max_attempts": 0}, "retry_limit", "must be an integer >= 1, got 0"),
    ({"max_attempts": -3}, "retry_limit", "must be an integer >= 1, got -3"),
    ({"max_attempts": 2.0}, "retry_limit", "must be an integer >= 1, got 2.0"),
    ({"max_attempts": True}, "retry_limit", "must be an integer >= 1, got True"),
    ({"max_attempts": "3"}, "retry_limit", "must be an integer >= 1, got '3'"),
    ({"max_attempts": None}, "retry_limit", "must be an integer >= 1, got None"),
    ({"initial_delay": 0}, "retry_delay", "must be a positive number of seconds, got 0"),
    ({"initial_delay": -1.0}, "retry_delay", "must be a positive number of seconds, got -1.0"),
    ({"initial_delay": math.nan}, "retry_delay", "must be a positive number of seconds, got nan"),
    ({"initial_delay": math.inf}, "retry_delay", "must be a positive number of seconds, got inf"),
    ({"initial_delay": "soon"}, "retry_delay", "must be a positive number of seconds, got 'soon'"),
    ({"initial_delay": None}, "retry_delay", "must be a positive number of seconds, got None"),
    ({"initial_delay": False}, "retry_delay", "must be a positive number of seconds, got False"),
    ({"max_delay": 0.0}, "retry_max_delay", "must be a positive number of seconds, got 0.0"),
    ({"max_delay": -30}, "retry_max_delay", "must be a positive number of seconds, got -30"),
    ({"max_delay": math.inf}, "retry_max_delay", "must be a positive number of seconds, got inf"),
]


@pytest.mark.parametrize(
    ("kwargs", "parameter", "problem"),
    BAD_PARAMETERS,
    ids=[f"{key}={value!r}" for kwargs, _, _ in BAD_PARAMETERS for key, value in kwargs.items()],
)
def test_bad_parameters_are_named_after_the_hooks_arguments(kwargs, parameter, problem):
    with pytest.raises(MidjourneyValidationError) as info:
        RetryPolicy(**kwargs)
    assert info.value.parameter == parameter
    assert str(info.value) == f"Invalid parameter {parameter!r}: {problem}"


@pytest.mark.parametrize(
    ("max_attempts", "initial_delay", "max_delay"),
    [(1, 1.0, 30.0), (100, 0.001, 0.001), (3, 5.0, 1.0)],
    ids=["one-attempt", "tiny-delays", "cap-below-the-scale"],
)
def test_good_parameters_are_kept(max_attempts, initial_delay, max_delay):
    policy = RetryPolicy(max_attempts, initial_delay, max_delay)
    assert (policy.max_attempts, policy.initial_delay, policy.max_delay) == (max_attempts, initial_delay, max_delay)


@pytest.mark.parametrize("delay", ["0.5", timedelta(seconds=0.5)], ids=["numeric-string", "timedelta"])
def test_delays_accepted_by_validation_work_as_seconds(monkeypatch, delay):
    monkeypatch.setattr("random.uniform", lambda low, high: high)
    policy = RetryPolicy(2, delay, delay)
    done = run(policy, [MidjourneyServerError("HTTP 503"), "ok"])

    assert (policy.initial_delay, policy.max_delay) == (0.5, 0.5)
    assert (done.result, done.sleeps) == ("ok", [0.5])


# ------------------------------------------------------------------------------------------ what is retried


def server_error() -> MidjourneyError:
    return MidjourneyServerError("Server error on fetch (HTTP 502)")


#: (error, retried for a read, retried for a paid submission)
RETRIED: list[tuple[Callable[[], BaseException], bool, bool]] = [
    # The server certainly did nothing: even a submission is sent again.
    (lambda: MidjourneyRateLimitError("HTTP 429", safe_to_resend=True), True, True),
    (lambda: MidjourneyQueueFullError("code 23", safe_to_resend=True), True, True),
    (lambda: MidjourneyConnectionError("Could not connect: refused", safe_to_resend=True), True, True),
    (lambda: MidjourneyServerError("HTTP 503 before the request was read", safe_to_resend=True), True, True),
    # The server may have acted: reads are retried, a submission never (it could pay for a second video).
    (server_error, True, False),
    (lambda: MidjourneyConnectionError("Network error: connection reset"), True, False),
    (lambda: MidjourneyConnectionError("Timed out on fetch: ReadTimeout"), True, False),
    (lambda: MidjourneyResponseError("garbled answer"), True, False),
    (lambda: MidjourneyDownloadError("clip cut short"), True, False),
    # Permanent errors: retrying cannot help.
    (lambda: MidjourneyAuthError("HTTP 401"), False, False),
    (lambda: MidjourneyRejectedError("HTTP 400"), False, False),
    (lambda: MidjourneyNotFoundError("HTTP 404"), False, False),
    (lambda: MidjourneyValidationError("prompt", "empty"), False, False),
    (lambda: MidjourneyTaskFailedError("ended FAILURE", mj_task_id="1", status="FAILURE"), False, False),
    # Neither family: the hook does not retry them either.
    (lambda: MidjourneyApiError("gateway code 5"), False, False),
    (lambda: MidjourneySubmitOutcomeUnknownError("may or may not have been accepted"), False, False),
    (lambda: MidjourneyError("plain"), False, False),
    # Not ours at all: a bug, raised at once.
    (lambda: ValueError("bug"), False, False),
    (lambda: KeyError("bug"), False, False),
]


def _retried_id(case: tuple[Callable[[], BaseException], bool, bool]) -> str:
    error = case[0]()
    safe = getattr(error, "safe_to_resend", None)
    return f"{type(error).__name__}{'-safe' if safe else ''}-{str(error)[:18]}"


@pytest.mark.parametrize("resend_safe_only", [False, True], ids=["read", "paid-submission"])
@pytest.mark.parametrize(("make_error", "for_read", "for_submission"), RETRIED, ids=[_retried_id(c) for c in RETRIED])
def test_which_failures_are_retried(make_error, for_read, for_submission, resend_safe_only):
    error = make_error()
    retried = for_submission if resend_safe_only else for_read

    done = run(RetryPolicy(3, 0.01, 0.02), [error, "ok"], resend_safe_only=resend_safe_only)

    if retried:
        assert (done.result, done.error, done.calls, len(done.sleeps)) == ("ok", None, 2, 1)
    else:
        assert (done.result, done.calls, done.sleeps) == (None, 1, [])
        assert done.error is error  # raised as it came, never wrapped in tenacity's RetryError


# ------------------------------------------------------------------------------------------ attempts


@pytest.mark.parametrize("max_attempts", [1, 2, 6])
def test_a_failure_that_persists_is_sent_max_attempts_times_then_raised(max_attempts):
    errors = [server_error() for _ in range(max_attempts)]

    done = run(RetryPolicy(max_attempts, 0.01, 0.02), errors)

    assert done.calls == max_attempts
    assert len(done.sleeps) == max_attempts - 1
    assert done.error is errors[-1]  # the last failure is the one reported


@pytest.mark.parametrize("failures", [0, 1, 5])
def test_a_failure_that_passes_costs_one_wait_per_failed_attempt(failures):
    done = run(RetryPolicy(6, 0.01, 0.02), [*[server_error() for _ in range(failures)], "ok"])
    assert (done.result, done.calls, len(done.sleeps)) == ("ok", failures + 1, failures)


# ------------------------------------------------------------------------------------------ how long


@pytest.mark.parametrize(
    ("retry_after", "slept"),
    [
        (0.0, 0.0),
        (0.5, 0.5),
        (2.0, 2.0),  # at max_delay
        (45.0, 45.0),  # beyond max_delay: the server's word wins
        (RETRY_AFTER_CEILING, RETRY_AFTER_CEILING),
        (RETRY_AFTER_CEILING + 1, RETRY_AFTER_CEILING),  # but never more than the ceiling
        (86400.0, RETRY_AFTER_CEILING),
    ],
)
def test_retry_after_is_honoured_beyond_max_delay_up_to_the_ceiling(retry_after, slept):
    limited = MidjourneyRateLimitError("HTTP 429", safe_to_resend=True, retry_after=retry_after)
    done = run(RetryPolicy(3, 1.0, 2.0), [limited, limited, "ok"])
    assert done.sleeps == [slept, slept]


def test_retry_after_applies_to_the_attempt_that_sent_it_only(monkeypatch):
    monkeypatch.setattr("random.uniform", lambda low, high: high)
    limited = MidjourneyRateLimitError("HTTP 429", safe_to_resend=True, retry_after=7.0)
    done = run(RetryPolicy(4, 1.0, 30.0), [limited, server_error(), server_error(), "ok"])
    assert done.sleeps == [7.0, 2.0, 4.0]


@pytest.mark.parametrize(
    ("initial_delay", "max_delay", "caps"),
    [
        (1.0, 30.0, [1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0, 30.0]),
        (0.25, 1.0, [0.25, 0.5, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0]),
        (5.0, 1.0, [1.0] * 8),  # a cap below the scale caps even the first wait
    ],
    ids=["default", "small", "cap-below-scale"],
)
def test_backoff_is_full_jitter_in_a_doubling_window_capped_at_max_delay(monkeypatch, initial_delay, max_delay, caps):
    """The wait before retry ``n`` (0-based) is uniform in ``[0, min(max_delay, initial_delay * 2**n)]``."""
    windows: list[tuple[float, float]] = []

    def top_of_window(low: float, high: float) -> float:
        windows.append((low, high))
        return high

    monkeypatch.setattr("random.uniform", top_of_window)
    done = run(RetryPolicy(len(caps) + 1, initial_delay, max_delay), [server_error()])

    # tenacity also works out a wait after the last attempt (and does not sleep it): compare the slept ones.
    assert windows[: len(caps)] == [(0, cap) for cap in caps]
    assert done.sleeps == caps


def test_backoff_waits_are_random_within_their_windows():
    policy = RetryPolicy(9, 0.5, 8.0)
    caps = [min(8.0, 0.5 * 2**n) for n in range(8)]
    sleeps = [run(policy, [server_error()]).sleeps for _ in range(100)]

    assert all(len(waits) == 8 for waits in sleeps)
    assert all(0.0 <= wait <= cap for waits in sleeps for wait, cap in zip(waits, caps, strict=True))
    # Real jitter: the waits before the same retry differ from run to run (100 equal draws: never by chance).
    assert all(len({waits[n] for waits in sleeps}) > 1 for n in range(8))


# ------------------------------------------------------------------------------------------ what it logs


def test_each_retry_logs_one_warning_naming_the_request_the_attempt_the_error_and_the_wait():
    failures = [  # with a Retry-After, for a known wait to log
        MidjourneyServerError("Server error on fetch", http_status=503, retry_after=1.5),
        MidjourneyRateLimitError("Rate limited on fetch", http_status=429, safe_to_resend=True, retry_after=1.5),
    ]
    done = run(RetryPolicy(3, 1.0, 30.0), [*failures, failures[-1]])

    assert done.logger.calls == [
        ("warning", "%s failed (attempt %d of %d): %s; retrying in %.2f s", (WHAT, 1, 3, failures[0], 1.5)),
        ("warning", "%s failed (attempt %d of %d): %s; retrying in %.2f s", (WHAT, 2, 3, failures[1], 1.5)),
    ]  # nothing for the last attempt: its error is raised instead
    assert done.logger.lines() == [
        f"{WHAT} failed (attempt 1 of 3): Server error on fetch (HTTP 503); retrying in 1.50 s",
        f"{WHAT} failed (attempt 2 of 3): Rate limited on fetch (HTTP 429); retrying in 1.50 s",
    ]
    assert done.error is failures[-1]


def test_a_failure_that_is_not_retried_logs_nothing():
    done = run(RetryPolicy(3, 1.0, 30.0), [MidjourneyAuthError("HTTP 401")])
    assert (done.calls, done.logger.calls) == (1, [])


def test_the_hooks_retry_warning_over_real_http_never_holds_the_key(hook, emulator, capfd):
    task_id = hook.submit_video("a fox", "https://cdn.example.com/first.png")
    emulator.config.fail_next = [("fetch", "500")]
    capfd.readouterr()

    hook.get_task(task_id)

    out, err = capfd.readouterr()
    fetches = emulator.requests_to("fetch")
    assert [request.status for request in fetches] == [500, 200]
    assert all(request.headers["authorization"] == f"Bearer {SECRET_KEY}" for request in fetches)  # it was sent
    warnings = [line for line in (out + err).splitlines() if "retrying in" in line]
    assert len(warnings) == 1, out + err
    assert (
        f"fetch of task {task_id} failed (attempt 1 of 6): Server error on fetch of task {task_id} "
        "(HTTP 500, code 9, description: 'Internal error'); retrying in 0.0" in warnings[0]
    )
    assert SECRET_KEY not in out + err
    assert SECRET_KEY[-12:] not in out + err
