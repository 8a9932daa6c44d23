"""
The review example and the Midjourney view in Airflow's real UI, driven by headless Chromium.

A real deployment (``api-server``, ``scheduler`` with the LocalExecutor, ``triggerer``, ``dag-processor``; SQLite,
the simple auth manager with a generated password) runs ``example_dags/mjvideo_review.py`` against the emulator.
The test logs in through the login form and answers both human-in-the-loop questions **in the UI** (the task
instances' "Required Action" tab): Approve, then ``clip 2``. The run goes on with the chosen clip (the extend's
``index`` in the emulator's request log is 2) and saves both videos. Then the Midjourney view: the **Midjourney**
navigation page, the run's tab and the extend's save task instance tab; on the nav page and the task-instance tab
every ``<video>`` must really play (``readyState >= 2``, a duration, time advancing).

Screenshots go to ``artifacts/browser/review-*.png``; the same skip and require rules as every browser test
(``helpers.browser``).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from helpers import REPO, SECRET_KEY, connection_json
from helpers.airflow_processes import AirflowDeployment, base_env, free_port, port_open, wait_for
from helpers.browser import (
    LAUNCH_ARGS,
    UI_TIMEOUT_MS,
    browser_or_skip,
    generated_password,
    log_in,
    shot,
    shot_on_failure,
)

from airflow_provider_mjvideo.testing import EmulatorConfig, MidjourneyEmulator
from airflow_provider_mjvideo.ui import paths
from airflow_provider_mjvideo.versions import HAS_UI_AND_REVIEW

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not HAS_UI_AND_REVIEW, reason="the Midjourney view and human-in-the-loop need Airflow 3.1+"),
]

DAG_ID = "mjvideo_review"
RUN_ID = "review_in_the_ui"
USER = "admin"
CHOSEN = 2
COMPONENTS = ("api-server", "scheduler", "dag-processor", "triggerer")
MIGRATE_TIMEOUT = 300
STARTUP_TIMEOUT = 180
STEP_TIMEOUT = 240
#: Every <video> of the frame has data for the current frame, a duration, and has started playing.
ALL_PLAYING = """(expected) => {
  const videos = [...document.querySelectorAll("video")];
  return videos.length === expected
    && videos.every((v) => v.readyState >= 2 && v.duration > 0 && v.currentTime > 0 && !v.error);
}"""
START_ALL = "() => Promise.all([...document.querySelectorAll('video')].map((v) => v.play()))"
BACKGROUND = "() => getComputedStyle(document.body).backgroundColor"
#: The stylesheet's --bg of each theme.
LIGHT_BACKGROUND, DARK_BACKGROUND = "rgb(255, 255, 255)", "rgb(17, 17, 19)"
VIDEO_STATES = """() => [...document.querySelectorAll("video")].map(
  (v) => ({src: v.getAttribute("src"), readyState: v.readyState, duration: v.duration, currentTime: v.currentTime,
           error: v.error && v.error.code}))"""


@pytest.fixture(scope="module")
def review_emulator() -> Iterator[MidjourneyEmulator]:
    """Videos that finish on their own in two seconds."""
    with MidjourneyEmulator(EmulatorConfig(api_key=SECRET_KEY, video_duration=2.0, auth_style="bearer")) as emu:
        yield emu


@pytest.fixture(scope="module")
def deployment(
    tmp_path_factory: pytest.TempPathFactory, review_emulator: MidjourneyEmulator
) -> Iterator[AirflowDeployment]:
    """The four components on a fresh home, the review DAG parsed and unpaused; stopped whatever happens."""
    browser_or_skip()
    root = tmp_path_factory.mktemp("browser-review")
    home = root / "airflow-home"
    home.mkdir()
    out_dir = root / "process-output"
    out_dir.mkdir()
    env = base_env(home, free_port(), REPO / "example_dags")
    env.update(
        {
            "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
            "AIRFLOW__CORE__PARALLELISM": "2",
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{USER}:admin",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(home / "passwords.json"),
            "AIRFLOW__DAG_PROCESSOR__PARSING_PROCESSES": "1",
            "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
            "AIRFLOW__SCHEDULER__SCHEDULER_IDLE_SLEEP_TIME": "0.5",
            "AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK": "False",
            "AIRFLOW_CONN_MIDJOURNEY_DEFAULT": connection_json(review_emulator),
            "AIRFLOW_VAR_MJVIDEO_DESTINATION": (root / "videos").as_uri(),
            "MJVIDEO_POLL_INTERVAL": "1",
        }
    )
    deployment = AirflowDeployment(home=home, env=env, out_dir=out_dir, dag_id=DAG_ID)
    survivors: list[int] = []
    try:
        deployment.cli("db", "migrate", timeout=MIGRATE_TIMEOUT)
        for name in COMPONENTS:
            deployment.start(name)
        port = int(env["AIRFLOW__API__PORT"])
        wait_for("the api-server port", lambda: port_open(port), STARTUP_TIMEOUT, deployment)
        wait_for("the generated password", lambda: _password(deployment), STARTUP_TIMEOUT, deployment)
        wait_for(
            f"{DAG_ID} to be parsed",
            lambda: deployment.query("SELECT 1 FROM serialized_dag WHERE dag_id = ?", DAG_ID),
            STARTUP_TIMEOUT,
            deployment,
        )
        deployment.cli("dags", "unpause", DAG_ID)
        yield deployment
    except BaseException:
        print(deployment.diagnostics())
        raise
    finally:
        survivors = deployment.stop()
    assert not survivors, f"Airflow processes survived the teardown: {survivors}"


def _password(deployment: AirflowDeployment) -> str | None:
    return generated_password(deployment.home / "passwords.json", USER)


def _state(deployment: AirflowDeployment, task_id: str, map_index: int = -1) -> str | None:
    rows = deployment.query(
        "SELECT state FROM task_instance WHERE dag_id = ? AND run_id = ? AND task_id = ? AND map_index = ?",
        DAG_ID,
        RUN_ID,
        task_id,
        map_index,
    )
    return rows[0][0] if rows else None


def _asks(deployment: AirflowDeployment, task_id: str) -> bool:
    """Whether the human-in-the-loop task waits for an answer (Airflow 3.3: ``awaiting_input``; 3.1-3.2: deferred)."""
    return _state(deployment, task_id) in ("awaiting_input", "deferred")


def _run_state(deployment: AirflowDeployment) -> str | None:
    rows = deployment.query("SELECT state FROM dag_run WHERE dag_id = ? AND run_id = ?", DAG_ID, RUN_ID)
    state = rows[0][0] if rows else None
    return state if state in ("success", "failed") else None


def _xcom_id(deployment: AirflowDeployment, task_id: str) -> str:
    """The Midjourney task id a submit task of the run returned (stored as a JSON string)."""
    (value,) = deployment.query(
        "SELECT value FROM xcom WHERE run_id = ? AND task_id = ? AND key = 'return_value'", RUN_ID, task_id
    )[0]
    return str(value).strip('"')


def _open_tab(page: Any, url: str, name: str) -> None:
    """Open a page of the UI and its tab ``name`` (a plugin's tab is a link in the tab bar)."""
    page.goto(url)
    page.get_by_role("link", name=name, exact=True).click()


def _answer_in_the_ui(page: Any, base: str, task_id: str, button: str, screenshot: str) -> None:
    """Open the task instance's Required Action tab and press ``button``."""
    from playwright.sync_api import expect

    page.goto(f"{base}/dags/{DAG_ID}/runs/{RUN_ID}/tasks/{task_id}/required_actions")
    answer = page.get_by_role("button", name=button, exact=True)
    expect(answer).to_be_visible()
    shot(page, screenshot)
    answer.click()


def _view_frame(page: Any, src_part: str) -> Any:
    """The iframe of the Midjourney view whose address contains ``src_part``, once its page has loaded."""
    from playwright.sync_api import expect

    frame_element = page.locator(f"iframe[src*='{src_part}']")
    expect(frame_element).to_have_count(1)
    frame = frame_element.element_handle().content_frame()
    frame.wait_for_load_state()
    return frame


def _play_every_clip(frame: Any, expected: int) -> list[dict[str, Any]]:
    """Start every <video> of ``frame`` and wait until all of them really play; return their states."""
    frame.wait_for_function(f"() => document.querySelectorAll('video').length === {expected}")
    frame.evaluate(START_ALL)
    try:
        frame.wait_for_function(ALL_PLAYING, arg=expected, timeout=UI_TIMEOUT_MS)
    finally:
        states = frame.evaluate(VIDEO_STATES)
    return list(states)


def test_a_person_approves_and_picks_the_clip_in_the_ui_and_the_view_plays_the_clips(
    deployment: AirflowDeployment, review_emulator: MidjourneyEmulator
) -> None:
    from playwright.sync_api import expect, sync_playwright

    emu, base = review_emulator, deployment.api_url
    started = time.monotonic()
    phases: dict[str, float] = {}
    password = _password(deployment)
    assert password
    deployment.cli("dags", "trigger", DAG_ID, "--run-id", RUN_ID)

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=browser_or_skip(), headless=True, args=LAUNCH_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 1000})
            page.set_default_timeout(UI_TIMEOUT_MS)
            expect.set_options(timeout=UI_TIMEOUT_MS)
            with shot_on_failure(page, "review-99-failure"):
                log_in(page, base, USER, password)

                # 1. Nothing is paid before a person approves.
                wait_for(
                    "approve to ask",
                    lambda: _state(deployment, "approve") == "awaiting_input",
                    STEP_TIMEOUT,
                    deployment,
                )
                assert emu.counters["submit"] == 0
                _answer_in_the_ui(page, base, "approve", "Approve", "review-01-approve")
                phases["approved in the UI"] = time.monotonic() - started

                # 2. The video is made; the person picks a clip in the UI, among the clips the video has.
                wait_for(
                    "choose to ask", lambda: _state(deployment, "choose") == "awaiting_input", STEP_TIMEOUT, deployment
                )
                generate = str(
                    deployment.query(
                        "SELECT value FROM xcom WHERE run_id = ? AND task_id = 'generate' AND key = 'return_value'",
                        RUN_ID,
                    )[0][0]
                ).strip('"')
                page.goto(f"{base}/dags/{DAG_ID}/runs/{RUN_ID}/tasks/choose/required_actions")
                expect(page.get_by_text("Which clip of the lighthouse video should go on?")).to_be_visible()
                expect(page.get_by_text("a lighthouse on a cliff at night, waves crashing")).to_be_visible()
                for index in range(4):
                    expect(page.get_by_role("button", name=f"clip {index}", exact=True)).to_be_visible()
                links = page.get_by_role("link", name="watch it on the server")
                expect(links).to_have_count(4)
                assert links.nth(CHOSEN).get_attribute("href") == f"{emu.root_url}/media/{generate}/{CHOSEN}.mp4"
                view_link = page.get_by_role("link", name="Midjourney view")
                assert view_link.get_attribute("href") == (
                    f"{base}/{paths.APP_ROOT}{paths.task_instance_page(DAG_ID, RUN_ID, 'choose')}"
                )
                _answer_in_the_ui(page, base, "choose", f"clip {CHOSEN}", "review-02-choose-a-clip")
                phases["clip chosen in the UI"] = time.monotonic() - started

                # 3. The run goes on with the chosen clip and saves both videos.
                assert (
                    wait_for("the run to finish", lambda: _run_state(deployment), STEP_TIMEOUT, deployment) == "success"
                )
                phases["run finished"] = time.monotonic() - started
                submits = [request.json for request in emu.requests_to("submit")]
                assert len(submits) == 2
                extend_body = submits[1]
                assert (extend_body["action"], extend_body["taskId"], extend_body["index"]) == (
                    "extend",
                    generate,
                    CHOSEN,
                )
                extend = str(
                    deployment.query(
                        "SELECT value FROM xcom WHERE run_id = ? AND task_id = 'extend' AND key = 'return_value'",
                        RUN_ID,
                    )[0][0]
                ).strip('"')

                # 4. The Midjourney view in the navigation: the run's chain, and all eight saved clips play.
                page.goto(f"{base}/")
                page.get_by_role("link", name="Midjourney", exact=True).click()
                page.wait_for_url("**/plugin/midjourney")
                frame = _view_frame(page, paths.APP_ROOT)
                for mj_task_id in (generate, extend):
                    expect(frame.locator(f"article[data-mj-task='{mj_task_id}']")).to_be_visible()
                states = _play_every_clip(frame, 8)
                page.wait_for_timeout(300)  # let the players paint a frame for the screenshot
                shot(page, "review-03-midjourney-view")
                assert frame.evaluate(BACKGROUND) == LIGHT_BACKGROUND
                page.emulate_media(color_scheme="dark")  # the UI and the view follow a dark system theme
                frame.wait_for_function(f"() => ({BACKGROUND})() === {DARK_BACKGROUND!r}")
                shot(page, "review-06-midjourney-view-dark")
                page.emulate_media(color_scheme="light")
                phases["nav page played 8 clips"] = time.monotonic() - started

                # 5. The run's tab shows the same two tasks, and no other run's.
                page.goto(f"{base}/dags/{DAG_ID}/runs/{RUN_ID}")
                page.get_by_role("tab", name="Midjourney clips").or_(
                    page.get_by_role("link", name="Midjourney clips")
                ).first.click()
                run_frame = _view_frame(page, "/runs/")
                expect(run_frame.locator("article.mj-task")).to_have_count(2)
                shot(page, "review-04-run-tab")

                # 6. The extend's save task instance tab: only the extension, its four clips play.
                page.goto(f"{base}/dags/{DAG_ID}/runs/{RUN_ID}/tasks/save_clips/mapped/1")
                page.get_by_role("tab", name="Midjourney clips").or_(
                    page.get_by_role("link", name="Midjourney clips")
                ).first.click()
                ti_frame = _view_frame(page, "/tasks/save_clips")
                expect(ti_frame.locator("article.mj-task")).to_have_count(1)
                expect(ti_frame.locator(f"article[data-mj-task='{extend}']")).to_have_count(1)
                ti_states = _play_every_clip(ti_frame, 4)
                page.wait_for_timeout(300)
                shot(page, "review-05-task-instance-tab")
                phases["task-instance tab played 4 clips"] = time.monotonic() - started
        finally:
            browser.close()

    assert all(state["readyState"] >= 2 and state["duration"] > 0 for state in states + ti_states)
    assert not emu.errors
    print(f"\nbrowser review test: {time.monotonic() - started:.1f} s after the deployment was up")
    print("phases (cumulative): " + ", ".join(f"{name} {seconds:.1f} s" for name, seconds in phases.items()))
