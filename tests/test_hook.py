"""MidjourneyHook against the local emulator over real HTTP: codes, auth styles, retries, shapes, bad input."""

from __future__ import annotations

import json
import logging
import socket
import time

import pytest
from helpers import SECRET_KEY, connection_json

from airflow_provider_mjvideo.exceptions import (
    MidjourneyApiError,
    MidjourneyAuthError,
    MidjourneyBannedPromptError,
    MidjourneyConfigurationError,
    MidjourneyConnectionError,
    MidjourneyNotFoundError,
    MidjourneyPermanentError,
    MidjourneyQueueFullError,
    MidjourneyRateLimitError,
    MidjourneyRejectedError,
    MidjourneySubmitOutcomeUnknownError,
    MidjourneyTaskFailedError,
    MidjourneyValidationError,
    MidjourneyWaitTimeoutError,
)
from airflow_provider_mjvideo.hooks.midjourney import MidjourneyHook
from airflow_provider_mjvideo.models import TaskStatus
from airflow_provider_mjvideo.testing import MidjourneyEmulator
from airflow_provider_mjvideo.testing.emulator import EmulatorConfig, FaultConfig

IMAGE = "https://cdn.example.com/first.png"


def make_hook(emu: MidjourneyEmulator, monkeypatch: pytest.MonkeyPatch, conn_id: str = "mj_test", **extra: object):
    monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", connection_json(emu, **extra))
    return MidjourneyHook(conn_id, retry_delay=0.01, retry_max_delay=0.05)


def submit(hook: MidjourneyHook, prompt: str = "a red fox in snow", **kwargs: object) -> str:
    return hook.submit_video(prompt, kwargs.pop("image", IMAGE), "low", **kwargs)  # type: ignore[arg-type]


# ------------------------------------------------------------------------------------------ submit codes


@pytest.mark.parametrize("code", [1, 21, 22])
def test_accepted_codes_return_the_task_id(hook, emulator, code):
    emulator.config.submit_codes = [code]
    task_id = submit(hook)
    assert task_id in emulator.tasks
    assert isinstance(task_id, str)
    assert len(task_id) >= 17  # longer than 2**53 as digits: kept a string
    assert emulator.count("submit") == 1


@pytest.mark.parametrize(
    ("code", "error", "text"),
    [
        (4, MidjourneyRejectedError, "code 4"),
        (24, MidjourneyBannedPromptError, "code 24"),
        (3, MidjourneyNotFoundError, "code 3"),
        (-1, MidjourneyRejectedError, "code -1"),
    ],
)
def test_rejections_are_permanent_and_not_resent(hook, emulator, code, error, text):
    emulator.config.submit_codes = [code]
    with pytest.raises(error) as info:
        submit(hook)
    assert isinstance(info.value, MidjourneyPermanentError)
    assert text in str(info.value)
    assert "description" in str(info.value)
    assert emulator.count("submit") == 1
    assert emulator.counters["submit_accepted"] == 0


def test_banned_prompt_names_the_word(hook, emulator):
    with pytest.raises(MidjourneyBannedPromptError) as info:
        submit(hook, "a [banned] thing")
    assert info.value.code == 24
    assert info.value.banned_word
    assert info.value.banned_word in str(info.value)


@pytest.mark.parametrize(
    ("code", "error"), [(23, MidjourneyQueueFullError), (9, MidjourneyQueueFullError), (30, MidjourneyRateLimitError)]
)
def test_queue_full_and_rate_limit_codes_are_resent_until_accepted(hook, emulator, code, error):
    emulator.config.submit_codes = [code, code]
    task_id = submit(hook)
    assert emulator.count("submit") == 3
    assert emulator.counters["submit_accepted"] == 1
    assert task_id in emulator.tasks
    emulator.config.submit_codes = [code] * 10
    with pytest.raises(error):
        submit(hook)
    assert emulator.count("submit") == 3 + 6  # retry_limit attempts, then the error


def test_gateway_error_code_5_is_not_resent(hook, emulator):
    emulator.config.submit_codes = [5]
    with pytest.raises(MidjourneyApiError, match="code 5"):
        submit(hook)
    assert emulator.count("submit") == 1


# ------------------------------------------------------------------------------------------ auth styles


@pytest.mark.parametrize("style", ["bearer", "mj-api-secret", "raw"])
def test_each_auth_style_is_accepted_by_a_server_demanding_it(emulator, monkeypatch, style):
    emulator.config.auth_style = style
    hook = make_hook(emulator, monkeypatch, auth_style=style)
    task_id = submit(hook)
    assert hook.get_task(task_id).id == task_id
    headers = emulator.requests[0].headers
    expected = {"bearer": ("authorization", f"Bearer {SECRET_KEY}"), "mj-api-secret": ("mj-api-secret", SECRET_KEY)}
    name, value = expected.get(style, ("authorization", SECRET_KEY))
    assert headers[name] == value
    assert headers["content-type"] == "application/json"


@pytest.mark.parametrize(
    ("server", "client"),
    [("raw", "bearer"), ("bearer", "raw"), ("mj-api-secret", "bearer"), ("bearer", "mj-api-secret")],
)
def test_wrong_auth_style_is_an_auth_error_without_retries(emulator, monkeypatch, server, client):
    emulator.config.auth_style = server
    hook = make_hook(emulator, monkeypatch, auth_style=client)
    with pytest.raises(MidjourneyAuthError, match="HTTP 401"):
        submit(hook)
    assert emulator.count("submit") == 1
    assert emulator.counters["submit_accepted"] == 0


@pytest.mark.parametrize("flavor", ["trueai", "novicezk", "newapi"])
def test_wrong_key_reads_as_auth_error_in_every_flavor(emulator, monkeypatch, flavor):
    emulator.config.flavor = flavor
    monkeypatch.setenv(
        "AIRFLOW_CONN_MJ_BAD",
        json.dumps({"conn_type": "midjourney", "host": emulator.url, "password": "wrong-key"}),
    )
    with pytest.raises(MidjourneyAuthError) as info:
        MidjourneyHook("mj_bad", retry_delay=0.01).find_task("123")
    assert "auth_style" in str(info.value)
    assert emulator.count("fetch") == 1


# ------------------------------------------------------------------------------------------ retries


@pytest.mark.parametrize("fault", ["500", "502", "503", "504", "429", "drop", "malformed", "slow"])
def test_read_faults_are_retried(hook, emulator, fault):
    task_id = submit(hook)
    emulator.config.faults.slow_seconds = 0.05
    emulator.config.fail_next = [("fetch", fault), ("fetch", fault)]
    task = hook.get_task(task_id)
    assert task.id == task_id
    expected = 1 if fault == "slow" else 3  # a slow answer is still an answer
    assert emulator.count("fetch") == expected
    assert emulator.counters["faults"] == {fault: 1 if fault == "slow" else 2}  # a slow answer is not retried


def test_retry_after_is_honoured(hook, emulator):
    task_id = submit(hook)
    emulator.config.faults.retry_after = 0.3
    emulator.config.fail_next = [("fetch", "429")]
    hook.get_task(task_id)
    first, second = emulator.requests_to("fetch")[-2:]
    assert first.status == 429
    assert second.time - first.time >= 0.3  # waited at least what Retry-After asked, though retry_max_delay=0.05


@pytest.mark.parametrize("fault", ["429", "503"])
def test_submit_is_resent_only_when_the_server_cannot_have_taken_it(hook, emulator, fault):
    emulator.config.fail_next = [("submit", fault)]
    task_id = submit(hook)
    assert emulator.count("submit") == 2
    assert emulator.counters["submit_accepted"] == 1
    assert list(emulator.tasks) == [task_id]


@pytest.mark.parametrize("fault", ["500", "502", "504", "drop", "malformed"])
def test_submit_is_never_resent_after_an_ambiguous_failure(hook, emulator, fault):
    emulator.config.fail_next = [("submit", fault)]
    with pytest.raises(MidjourneySubmitOutcomeUnknownError) as info:
        submit(hook)
    assert emulator.count("submit") == 1
    assert "not resent" in str(info.value)


def test_connection_refused_is_retried_then_reported(monkeypatch):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed as soon as the block ends: nothing listens there
    monkeypatch.setenv(
        "AIRFLOW_CONN_MJ_CLOSED",
        json.dumps({"conn_type": "midjourney", "host": f"http://127.0.0.1:{port}", "password": SECRET_KEY}),
    )
    hook = MidjourneyHook("mj_closed", retry_limit=3, retry_delay=0.01)
    with pytest.raises(MidjourneyConnectionError) as info:
        hook.submit_video("p", IMAGE)
    assert info.value.safe_to_resend
    assert SECRET_KEY not in str(info.value)


# ------------------------------------------------------------------------------------------ extend, list, cancel


def test_extend_sends_camel_case_parent_and_integer_index(hook, emulator):
    parent = submit(hook)
    hook.wait_for_task(parent, poll_interval=0.05, timeout=10)
    child = hook.submit_video("more", action="extend", index="2", mj_task_id=parent)
    body = emulator.requests_to("submit")[-1].json
    assert body["taskId"] == parent
    assert body["task_id"] == parent
    assert body["index"] == 2
    assert body["action"] == "extend"
    assert "image" not in body
    assert emulator.tasks[child]["parent_id"] == parent


def test_extend_of_unfinished_or_unknown_parent_is_rejected(hook, emulator):
    parent = submit(hook, "[stuck] never done")
    with pytest.raises(MidjourneyRejectedError, match="code 4"):
        hook.submit_video("more", action="extend", index=0, mj_task_id=parent)
    with pytest.raises(MidjourneyNotFoundError, match="HTTP 404"):
        hook.submit_video("more", action="extend", index=0, mj_task_id="1" * 19)


def test_get_tasks_chunks_and_leaves_out_unknown_ids(emulator, monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_MJ_LIST", connection_json(emulator))
    hook = MidjourneyHook("mj_list", list_chunk_size=3, retry_delay=0.01)
    ids = [submit(hook, f"clip {n}") for n in range(7)]
    unknown = ["9" * 18, "8" * 18]
    tasks = hook.get_tasks([*ids, *unknown, ids[0]])
    assert [task.id for task in tasks] == ids
    lists = emulator.requests_to("list")
    assert len(lists) == 3  # 9 distinct ids, 3 per request
    assert [len(request.json["ids"]) for request in lists] == [3, 3, 3]


def test_unknown_id_is_none_in_every_flavor(emulator, monkeypatch):
    hook = make_hook(emulator, monkeypatch)
    for flavor, unknown_fetch in [("trueai", "empty"), ("trueai", "null"), ("trueai", "204"), ("newapi", "empty")]:
        emulator.config.flavor = flavor
        emulator.config.unknown_fetch = unknown_fetch
        assert hook.find_task("4" * 18) is None
        with pytest.raises(MidjourneyNotFoundError):
            hook.get_task("4" * 18)


def test_cancel_on_trueai_and_unsupported_elsewhere(hook, emulator):
    task_id = submit(hook, "[stuck] long one")
    assert hook.cancel_task(task_id) is True
    assert hook.get_task(task_id).status is TaskStatus.CANCEL
    emulator.config.flavor = "newapi"
    assert hook.cancel_task(submit(hook)) is False


# ------------------------------------------------------------------------------------------ waiting, shapes


@pytest.mark.parametrize("shape", ["objects", "strings", "video_url_only", "video_urls_json_string", "image_url_mp4"])
def test_wait_returns_urls_in_every_documented_shape(hook, emulator, shape):
    emulator.config.url_shape = shape
    task = hook.wait_for_task(submit(hook), poll_interval=0.05, timeout=10)
    assert task.status is TaskStatus.SUCCESS
    expected = 1 if shape in ("video_url_only", "image_url_mp4") else 4
    assert len(task.video_urls) == expected
    assert all(url.startswith(emulator.root_url) and url.endswith(".mp4") for url in task.video_urls)


def test_wait_tolerates_success_before_urls_and_blank_newapi_status(hook, emulator):
    emulator.config.urls_after_success = 0.4
    emulator.config.flavor = "newapi"
    emulator.config.newapi_blank_status_seconds = 0.3
    task_id = submit(hook)
    first = hook.get_task(task_id)
    assert first.status is TaskStatus.UNKNOWN
    assert first.raw_status == ""
    seen_success_without_urls = False
    for _ in range(200):
        task = hook.get_task(task_id)
        if task.status is TaskStatus.SUCCESS and not task.video_urls:
            seen_success_without_urls = True
            break
        time.sleep(0.02)
    assert seen_success_without_urls
    task = hook.wait_for_task(task_id, poll_interval=0.05, timeout=10)
    assert len(task.video_urls) == 4


@pytest.mark.parametrize(("marker", "status"), [("[fail]", "FAILURE"), ("[cancel]", "CANCEL"), ("[modal]", "MODAL")])
def test_wait_fails_permanently_on_terminal_failures(hook, marker, status):
    with pytest.raises(MidjourneyTaskFailedError) as info:
        hook.wait_for_task(submit(hook, f"{marker} prompt"), poll_interval=0.05, timeout=10)
    assert info.value.status == status
    assert status in str(info.value)


def test_wait_times_out_with_the_task_still_running(hook):
    with pytest.raises(MidjourneyWaitTimeoutError):
        hook.wait_for_task(submit(hook, "[stuck] forever"), poll_interval=0.05, timeout=0.3)


def test_mode_and_path_prefix_reach_the_right_routes(monkeypatch):
    config = EmulatorConfig(api_key=SECRET_KEY, video_duration=0.2, path_prefix="/api/v1")
    with MidjourneyEmulator(config) as emu:
        assert emu.url.endswith("/api/v1")
        hook = make_hook(emu, monkeypatch, mode="relax")
        task_id = submit(hook)
        assert emu.requests[0].path == "/api/v1/mj-relax/mj/submit/video"
        assert emu.requests[0].mode == "relax"
        assert emu.tasks[task_id]["mode"] == "relax"


# ------------------------------------------------------------------------------------------ bad input


BAD_SUBMITS = [
    ("motion", {"prompt": "p", "image": IMAGE, "motion": "medium"}),
    ("image", {"prompt": "p", "image": "cdn.example.com/a.png"}),  # a relative path
    ("image", {"prompt": "p"}),
    ("prompt", {"prompt": "  ", "image": IMAGE}),
    ("action", {"prompt": "p", "image": IMAGE, "action": "shorten"}),
    ("mj_task_id", {"prompt": "p", "action": "extend", "index": 0}),
    ("index", {"prompt": "p", "action": "extend", "mj_task_id": "123"}),
    ("index", {"prompt": "p", "action": "extend", "mj_task_id": "123", "index": 4}),
    ("index", {"prompt": "p", "action": "extend", "mj_task_id": "123", "index": -1}),
    ("index", {"prompt": "p", "action": "extend", "mj_task_id": "123", "index": "x"}),
    ("state", {"prompt": "p", "image": IMAGE, "state": "s" * 300}),
    ("notify_hook", {"prompt": "p", "image": IMAGE, "notify_hook": "callback"}),
    ("extra_body", {"prompt": "p", "image": IMAGE, "extra_body": {"batchSize": 8}}),
]


@pytest.mark.parametrize(("parameter", "kwargs"), BAD_SUBMITS, ids=[f"{p}-{i}" for i, (p, _) in enumerate(BAD_SUBMITS)])
def test_bad_submit_input_is_named_and_sends_nothing(hook, emulator, parameter, kwargs):
    with pytest.raises(MidjourneyValidationError) as info:
        hook.submit_video(**kwargs)  # type: ignore[arg-type]
    assert info.value.parameter == parameter
    assert emulator.counters["requests"] == 0


@pytest.mark.parametrize(
    ("call", "parameter"),
    [
        (lambda h: h.wait_for_task("123", poll_interval=0), "poll_interval"),
        (lambda h: h.wait_for_task("123", poll_interval=-1), "poll_interval"),
        (lambda h: h.wait_for_task("123", timeout=0), "timeout"),
        (lambda h: h.get_task(""), "mj_task_id"),
        (lambda h: h.get_task("12/34"), "mj_task_id"),
        (lambda h: h.get_tasks(["1", None]), "ids"),
    ],
)
def test_bad_read_input_is_named_and_sends_nothing(hook, emulator, call, parameter):
    with pytest.raises(MidjourneyValidationError) as info:
        call(hook)
    assert info.value.parameter == parameter
    assert emulator.counters["requests"] == 0


@pytest.mark.parametrize(
    ("conn", "text"),
    [
        ({"conn_type": "midjourney", "password": "k"}, "has no host"),
        ({"conn_type": "midjourney", "host": "http://127.0.0.1:9"}, "no API key"),
        ({"conn_type": "midjourney", "host": "ftp://127.0.0.1:9", "password": "k"}, "http:// or https://"),
        (
            {
                "conn_type": "midjourney",
                "host": "http://127.0.0.1:9",
                "password": "k",
                "extra": {"auth_style": "beaver"},
            },
            "unknown auth_style 'beaver'",
        ),
        (
            {"conn_type": "midjourney", "host": "http://127.0.0.1:9", "password": "k", "extra": {"mode": "warp"}},
            "unknown mode 'warp'",
        ),
        (
            {"conn_type": "midjourney", "host": "http://127.0.0.1:9", "password": "k", "extra": {"timeout": "soon"}},
            "timeout must be a positive number of seconds",
        ),
    ],
)
def test_misconfigured_connections_fail_clearly(monkeypatch, conn, text):
    monkeypatch.setenv("AIRFLOW_CONN_MJ_BROKEN", json.dumps(conn))
    with pytest.raises(MidjourneyConfigurationError, match=text):
        MidjourneyHook("mj_broken").submit_video("p", IMAGE)


def test_unknown_connection_id_says_how_to_define_it():
    with pytest.raises(MidjourneyConfigurationError, match="AIRFLOW_CONN_NO_SUCH_CONN"):
        MidjourneyHook("no_such_conn").get_task("123")


# ------------------------------------------------------------------------------------------ test_connection


def test_test_connection_tells_ok_bad_key_and_bad_url(emulator, monkeypatch):
    ok, message = make_hook(emulator, monkeypatch).test_connection()
    assert ok, message
    monkeypatch.setenv(
        "AIRFLOW_CONN_MJ_WRONG_KEY",
        json.dumps({"conn_type": "midjourney", "host": emulator.url, "password": "nope"}),
    )
    ok, message = MidjourneyHook("mj_wrong_key").test_connection()
    assert not ok
    assert message.startswith("Authentication failed")
    monkeypatch.setenv(
        "AIRFLOW_CONN_MJ_WRONG_PATH",
        json.dumps({"conn_type": "midjourney", "host": emulator.url + "/nothing-here", "password": SECRET_KEY}),
    )
    ok, message = MidjourneyHook("mj_wrong_path").test_connection()
    assert not ok
    assert message.startswith("Cannot find the API")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.setenv(
        "AIRFLOW_CONN_MJ_NOWHERE",
        json.dumps({"conn_type": "midjourney", "host": f"http://127.0.0.1:{port}", "password": SECRET_KEY}),
    )
    ok, message = MidjourneyHook("mj_nowhere", retry_limit=1).test_connection()
    assert not ok
    assert message.startswith("Cannot reach")


def test_test_connection_works_without_the_list_route(emulator, monkeypatch):
    emulator.config.list_by_condition_enabled = False
    for flavor in ("trueai", "newapi"):
        emulator.config.flavor = flavor
        ok, message = make_hook(emulator, monkeypatch).test_connection()
        assert ok, message


# ------------------------------------------------------------------------------------------ secrets


def test_key_never_reaches_logs_or_exception_text(emulator, monkeypatch, caplog):
    caplog.set_level(logging.DEBUG)
    hook = make_hook(emulator, monkeypatch)
    texts: list[str] = []
    emulator.config.fail_next = []
    task_id = submit(hook)
    emulator.config.fail_next = [("fetch", "500"), ("fetch", "drop"), ("submit", "500")]
    for call in (
        lambda: hook.get_task(task_id),
        lambda: submit(hook),
        lambda: hook.submit_video("p", "ftp://x"),
    ):
        try:
            call()
        except Exception as err:
            texts.append(f"{err!r} {err}")
    emulator.config.auth_style = "mj-api-secret"
    try:
        hook.get_task(task_id)
    except MidjourneyAuthError as err:
        texts.append(f"{err!r} {err}")
    assert len(texts) >= 3
    assert SECRET_KEY not in "\n".join(texts)
    assert SECRET_KEY not in caplog.text
    assert SECRET_KEY not in repr(hook.settings)
    assert "Authentication failed" in "\n".join(texts)


def test_fault_rates_soak_in_small(hook, emulator):
    """A burst of mixed faults on reads never turns into an error for a short wait."""
    emulator.config.faults = FaultConfig(
        seed=3, fetch={"500": 0.1, "503": 0.1, "429": 0.1, "drop": 0.05, "malformed": 0.05}, retry_after=0.01
    )
    task = hook.wait_for_task(submit(hook), poll_interval=0.05, timeout=20)
    assert task.status is TaskStatus.SUCCESS
    assert sum(emulator.counters["faults"].values()) > 0
