"""Malformed server answers through the hook over real HTTP: a clear, short error or a tolerant parse, never a crash.

A tiny scripted HTTP server on 127.0.0.1 answers every request with the case's status, headers and body and counts
requests, so each case also checks the transient classification: garbled answers to reads are
``MidjourneyResponseError`` and retried (three attempts here), while a garbled answer to a submission is never
resent (``MidjourneySubmitOutcomeUnknownError``). Every case captures the hook's and Airflow's logs at DEBUG and
checks that no log line and no exception text carries more than ~2 KB of the server's body.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from helpers import SECRET_KEY
from helpers.scripted_http import Answer, ScriptedServer

from airflow_provider_mjvideo.exceptions import (
    MidjourneyApiError,
    MidjourneyError,
    MidjourneyRateLimitError,
    MidjourneyRejectedError,
    MidjourneyResponseError,
    MidjourneyServerError,
    MidjourneySubmitOutcomeUnknownError,
)
from airflow_provider_mjvideo.hooks.midjourney import MidjourneyHook
from airflow_provider_mjvideo.models import MidjourneyTask, TaskStatus

TASK_ID = "17956238781270001"
IMAGE = "https://cdn.example.com/first-frame.png"
RETRY_LIMIT = 3
#: No log line or error text may be this long (the 10 MB bodies would blow far past it if copied).
MAX_LINE = 2500
TEN_MB = 10 * 1024 * 1024

HTML_200 = (
    b"<!DOCTYPE html><html><head><title>Sign in</title></head><body><form action='/login'>"
    b"<input name='user'><input name='password' type='password'></form></body></html>"
)
HTML_502 = (
    b"<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n<center><h1>502 Bad Gateway</h1></center>"
    b"\r\n<hr><center>nginx/1.25.3</center>\r\n</body>\r\n</html>\r\n"
)


def task_json(**fields: Any) -> bytes:
    return json.dumps({"id": TASK_ID, "status": "IN_PROGRESS", "progress": "10%", **fields}).encode()


@pytest.fixture
def server() -> Iterator[ScriptedServer]:
    scripted = ScriptedServer().start()
    try:
        yield scripted
    finally:
        scripted.stop()


@pytest.fixture
def hook(server: ScriptedServer, monkeypatch: pytest.MonkeyPatch) -> Iterator[MidjourneyHook]:
    conn = {"conn_type": "midjourney", "host": server.url, "password": SECRET_KEY, "extra": {"timeout": 10}}
    monkeypatch.setenv("AIRFLOW_CONN_MJ_SCRIPTED", json.dumps(conn))
    scripted_hook = MidjourneyHook("mj_scripted", retry_limit=RETRY_LIMIT, retry_delay=0.01, retry_max_delay=0.02)
    yield scripted_hook
    scripted_hook.close()


CALLS: dict[str, Callable[[MidjourneyHook], Any]] = {
    "submit": lambda h: h.submit_video("a paper boat", IMAGE, "low"),
    "fetch": lambda h: h.find_task(TASK_ID),
    "list": lambda h: h.get_tasks([TASK_ID]),
}
#: How each request names itself in messages.
WHAT = {"submit": "video submission", "fetch": f"fetch of task {TASK_ID}", "list": "list of 1 task(s)"}


@dataclass(frozen=True)
class Raises:
    error: type[MidjourneyError]
    words: tuple[str, ...]
    requests: int


@dataclass(frozen=True)
class Parses:
    check: Callable[[Any], None]
    requests: int = 1


def _unknown_status(task: MidjourneyTask) -> None:
    assert task.status is TaskStatus.UNKNOWN
    assert task.raw_status == "WARMING_UP"


def _wrong_types(task: MidjourneyTask) -> None:
    assert task.status is TaskStatus.IN_PROGRESS
    assert task.progress == 0
    assert task.video_urls == ()
    assert task.submit_time is None
    assert task.image_url == "7"


def _not_a_number_progress(task: MidjourneyTask) -> None:
    assert task.progress == 0


def _beyond_float(task: MidjourneyTask) -> None:
    assert task.progress in (0, 100)
    assert task.submit_time is None


def _times_out_of_range(task: MidjourneyTask) -> None:
    assert task.status is TaskStatus.SUCCESS
    assert (task.submit_time, task.start_time, task.finish_time) == (None, None, None)
    assert len(task.video_urls) == 1


def _huge_prompt(task: MidjourneyTask) -> None:
    assert task.prompt is not None
    assert len(task.prompt) == TEN_MB


def _bom(task: MidjourneyTask) -> None:
    assert task.id == TASK_ID
    assert task.progress == 10


CASES: list[tuple[str, str, Answer, Raises | Parses]] = [
    # HTML error pages and other non-JSON
    (
        "html-200-fetch",
        "fetch",
        Answer(200, HTML_200, {"Content-Type": "text/html"}),
        Raises(MidjourneyResponseError, ("HTTP 200", "Unreadable answer"), RETRY_LIMIT),
    ),
    (
        "html-502-fetch",
        "fetch",
        Answer(502, HTML_502, {"Content-Type": "text/html"}),
        Raises(MidjourneyServerError, ("HTTP 502", "502 Bad Gateway"), RETRY_LIMIT),
    ),
    (
        "html-200-submit",
        "submit",
        Answer(200, HTML_200, {"Content-Type": "text/html"}),
        Raises(MidjourneySubmitOutcomeUnknownError, ("HTTP 200", "not resent"), 1),
    ),
    (
        "html-502-submit",
        "submit",
        Answer(502, HTML_502, {"Content-Type": "text/html"}),
        Raises(MidjourneySubmitOutcomeUnknownError, ("HTTP 502", "not resent"), 1),
    ),
    (
        "non-json-200-list",
        "list",
        Answer(200, b"OK", {"Content-Type": "text/plain"}),
        Raises(MidjourneyResponseError, ("HTTP 200", "expected JSON"), RETRY_LIMIT),
    ),
    (
        "invalid-utf8-200-fetch",
        "fetch",
        Answer(200, b"\xff\xfe\x00garbage\x80\x81", {"Content-Type": "application/octet-stream"}),
        Raises(MidjourneyResponseError, ("HTTP 200",), RETRY_LIMIT),
    ),
    # empty, null, 204
    (
        "empty-200-submit",
        "submit",
        Answer(200, b""),
        Raises(MidjourneySubmitOutcomeUnknownError, ("HTTP 200", "expected JSON"), 1),
    ),
    ("empty-200-fetch-is-unknown-id", "fetch", Answer(200, b""), Parses(lambda task: _is_none(task))),
    ("204-submit", "submit", Answer(204), Raises(MidjourneySubmitOutcomeUnknownError, ("HTTP 204",), 1)),
    (
        "empty-429-fetch",
        "fetch",
        Answer(429, b""),
        Raises(MidjourneyRateLimitError, ("HTTP 429", "Rate limited"), RETRY_LIMIT),
    ),
    ("null-submit", "submit", Answer(200, b"null"), Raises(MidjourneySubmitOutcomeUnknownError, ("HTTP 200",), 1)),
    ("null-list", "list", Answer(200, b"null"), Raises(MidjourneyResponseError, ("HTTP 200",), RETRY_LIMIT)),
    # truncated JSON
    (
        "truncated-fetch",
        "fetch",
        Answer(200, b'{"id": "17956238781270001", "status": "IN_PROG'),
        Raises(MidjourneyResponseError, ("HTTP 200", "Unreadable answer"), RETRY_LIMIT),
    ),
    (
        "truncated-submit",
        "submit",
        Answer(200, b'{"code": 1, "description": "Submit Success", "result": "1795'),
        Raises(MidjourneySubmitOutcomeUnknownError, ("HTTP 200", "not resent"), 1),
    ),
    # 10 MB bodies
    (
        "10mb-garbage-200-fetch",
        "fetch",
        Answer(200, b"x" * TEN_MB, {"Content-Type": "text/plain"}),
        Raises(MidjourneyResponseError, ("HTTP 200", "Unreadable answer"), RETRY_LIMIT),
    ),
    (
        "10mb-html-500-fetch",
        "fetch",
        Answer(500, b"<html><body>" + b"y" * TEN_MB + b"</body></html>", {"Content-Type": "text/html"}),
        Raises(MidjourneyServerError, ("HTTP 500", "more chars"), RETRY_LIMIT),
    ),
    (
        "10mb-error-json-400-submit",
        "submit",
        Answer(400, json.dumps({"code": 4, "description": "z" * TEN_MB}).encode()),
        Raises(MidjourneyRejectedError, ("HTTP 400", "code 4", "more chars"), 1),
    ),
    ("10mb-prompt-task-parses", "fetch", Answer(200, task_json(prompt="p" * TEN_MB)), Parses(_huge_prompt)),
    # wrong shapes
    (
        "submit-missing-result",
        "submit",
        Answer(200, b'{"code": 1, "description": "Submit Success", "properties": {}}'),
        Raises(MidjourneySubmitOutcomeUnknownError, ("HTTP 200", "without a task id"), 1),
    ),
    (
        "submit-result-null",
        "submit",
        Answer(200, b'{"code": 22, "description": "In queue", "result": null}'),
        Raises(MidjourneySubmitOutcomeUnknownError, ("HTTP 200", "without a task id"), 1),
    ),
    (
        "fetch-json-string",
        "fetch",
        Answer(200, b'"ok"'),
        Raises(MidjourneyResponseError, ("HTTP 200", "task object"), RETRY_LIMIT),
    ),
    (
        "fetch-object-without-id",
        "fetch",
        Answer(200, b'{"status": "SUCCESS", "progress": "100%"}'),
        Raises(MidjourneyResponseError, ("HTTP 200", "without an id"), RETRY_LIMIT),
    ),
    (
        "list-object-without-array",
        "list",
        Answer(200, b'{"code": 1, "description": "ok"}'),
        Raises(MidjourneyResponseError, ("HTTP 200", "JSON array"), RETRY_LIMIT),
    ),
    (
        "list-array-of-numbers",
        "list",
        Answer(200, b"[1, 2, 3]"),
        Raises(MidjourneyResponseError, ("HTTP 200", "task object"), RETRY_LIMIT),
    ),
    # tolerant parses
    ("unknown-status", "fetch", Answer(200, task_json(status="WARMING_UP")), Parses(_unknown_status)),
    (
        "wrong-types",
        "fetch",
        Answer(200, task_json(progress="abc", videoUrls=5, submitTime="yesterday", imageUrl=7)),
        Parses(_wrong_types),
    ),
    ("progress-nan-percent", "fetch", Answer(200, task_json(progress="NaN%")), Parses(_not_a_number_progress)),
    ("progress-json-nan", "fetch", Answer(200, task_json().replace(b'"10%"', b"NaN")), Parses(_not_a_number_progress)),
    (
        "numbers-beyond-float",
        "fetch",
        Answer(
            200, b'{"id": "1", "status": "IN_PROGRESS", "progress": 1%s, "submitTime": 9%s}' % (b"0" * 400, b"9" * 400)
        ),
        Parses(_beyond_float),
    ),
    (
        "times-out-of-range",
        "fetch",
        Answer(
            200,
            task_json(
                status="SUCCESS",
                videoUrl="https://cdn.example.com/0.mp4",
                submitTime=1754211234567000000,
                startTime="Infinity",
                finishTime=1e300,
            ),
        ),
        Parses(_times_out_of_range),
    ),
    ("utf8-bom", "fetch", Answer(200, b"\xef\xbb\xbf" + task_json()), Parses(_bom)),
    (
        "code-as-string-submit",
        "submit",
        Answer(200, b'{"code": "1", "description": "Submit Success", "result": "17956238781270001"}'),
        Parses(lambda task_id: _equals(task_id, TASK_ID)),
    ),
    (
        "code-as-word-submit",
        "submit",
        Answer(200, b'{"code": "one", "description": "Submit Success", "result": "17956238781270001"}'),
        Raises(MidjourneyApiError, ("HTTP 200", "code one"), 1),
    ),
    # trueai's HTTP 200 error envelope
    (
        "trueai-success-false-submit",
        "submit",
        Answer(200, b'{"success": false, "code": -1, "message": "Daily limit reached"}'),
        Raises(MidjourneyRejectedError, ("HTTP 200", "code -1", "Daily limit reached"), 1),
    ),
    (
        "trueai-success-false-fetch",
        "fetch",
        Answer(200, b'{"success": false, "code": -1, "message": "IP not in whitelist"}'),
        Raises(MidjourneyRejectedError, ("HTTP 200", "IP not in whitelist"), 1),
    ),
]


def _is_none(value: Any) -> None:
    assert value is None


def _equals(value: Any, expected: Any) -> None:
    assert value == expected


def _capture_logs(caplog: pytest.LogCaptureFixture) -> None:
    """Capture stdlib logging at DEBUG; the hook's structlog lines go to stderr and are read from ``capfd``."""
    caplog.set_level(logging.DEBUG)
    for name in ("airflow", "airflow.task", "urllib3"):
        caplog.set_level(logging.DEBUG, logger=name)


def _log_views(caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]) -> dict[str, list[str]]:
    """
    The captured log lines per view: the stdlib records' messages, caplog's formatted text, the printed output.

    One log call can show in several views: a stdlib record is in the first two, and on the output too where
    Airflow's console handler prints it; a structlog line is on the output only.
    """
    out, err = capfd.readouterr()
    return {
        "records": [line for record in caplog.records for line in record.getMessage().splitlines()],
        "text": caplog.text.splitlines(),
        "output": out.splitlines() + err.splitlines(),
    }


def _log_lines(caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]) -> list[str]:
    return [line for view in _log_views(caplog, capfd).values() for line in view]


@pytest.mark.parametrize(("call", "answer", "expect"), [case[1:] for case in CASES], ids=[case[0] for case in CASES])
def test_malformed_answer(server: ScriptedServer, hook: MidjourneyHook, caplog, capfd, call, answer, expect):
    _capture_logs(caplog)
    server.answer = answer
    texts: list[str] = []
    if isinstance(expect, Raises):
        with pytest.raises(MidjourneyError) as info:
            CALLS[call](hook)
        error = info.value
        message = str(error)
        texts += [message, repr(error)]
        assert isinstance(error, expect.error), f"{type(error).__name__}: {message}"
        for word in expect.words:
            assert word in message, message
        # A readable sentence naming the request and the HTTP status, not a bare parser complaint.
        assert WHAT[call] in message, message
        assert f"HTTP {answer.status}" in message, message
    else:
        expect.check(CALLS[call](hook))
    assert len(server.requests) == expect.requests, server.requests
    views = _log_views(caplog, capfd)
    lines = [line for view in views.values() for line in view]
    # One warning per retry, counted in each view (proves the hook's log lines are captured here). The hook logs
    # through Airflow's LoggingMixin: a stdlib logger on Airflow 3.0, whose records caplog holds and Airflow's
    # console handler prints to stdout; a structlog logger on newer Airflow, printed to stderr, with no record.
    retries = {name: sum("retrying in" in line for line in view) for name, view in views.items()}
    in_records = expect.requests - 1 if isinstance(hook.log, logging.Logger) else 0
    assert retries == {"records": in_records, "text": in_records, "output": expect.requests - 1}
    lines += [line for text in texts for line in text.splitlines()]
    longest = max((len(line) for line in lines), default=0)
    assert longest < MAX_LINE, f"a log line or error text of {longest} characters"
    assert SECRET_KEY not in "\n".join(lines)


def test_the_scripted_server_serves_a_normal_task(server: ScriptedServer, hook: MidjourneyHook):
    """Sanity check of the harness: a well-formed answer parses, with one request."""
    server.answer = Answer(200, task_json(status="SUCCESS", videoUrls=["https://cdn.example.com/0.mp4"]))
    task = hook.get_task(TASK_ID)
    assert (task.id, task.status, task.video_urls) == (TASK_ID, TaskStatus.SUCCESS, ("https://cdn.example.com/0.mp4",))
    assert server.requests == [("GET", f"/mj/task/{TASK_ID}/fetch")]


def test_the_long_line_check_can_fail(hook: MidjourneyHook, caplog, capfd):
    """The checks above see the hook's own log lines: one copying a big body would be caught."""
    _capture_logs(caplog)
    hook.log.warning("body: %s", "x" * TEN_MB)
    lines = _log_lines(caplog, capfd)
    assert max(len(line) for line in lines) >= MAX_LINE


def test_a_garbled_answer_during_a_wait_only_delays_it(server: ScriptedServer, hook: MidjourneyHook):
    """wait_for_task keeps polling through garbled answers and succeeds once the server answers properly."""
    server.answer = Answer(200, b'{"id": "1795", "stat')
    done = Answer(200, task_json(status="SUCCESS", videoUrls=["https://cdn.example.com/0.mp4"]))
    timer = threading.Timer(0.3, lambda: setattr(server, "answer", done))
    timer.start()
    try:
        task = hook.wait_for_task(TASK_ID, poll_interval=0.05, timeout=10)
    finally:
        timer.cancel()
    assert task.status is TaskStatus.SUCCESS
    assert len(server.requests) > RETRY_LIMIT
