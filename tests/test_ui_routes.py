"""
The Midjourney view's routes, mounted by Airflow's own API server app with Airflow's auth in front.

Two DAGs ran for real (``dag.test()`` against the emulator): ``mjvideo_ui_shown`` and ``mjvideo_ui_hidden`` each
generate a video, extend its clip 1 and save clips 0 and 1 of the extension (file:// storage, with manifests).
The ``outsider`` may not read the hidden DAG (``helpers.auth``). Every access rule of the view has a test here:

* no login → 401 on every route; a forged token → 403;
* a DAG the user may not read → 403 on its run, task instance and file routes, and absent from the navigation;
* a file is served only when a download of that run saved it and its manifest lists it: another run's or DAG's
  clip, an unsaved clip, an index out of range, a path in the task id, a manifest entry pointing outside its
  folder (``../``, another bucket) are all refused;
* the API key appears on no page.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from helpers import SECRET_KEY, connection_json
from helpers.auth import DENIED_DAG_ID, OUTSIDER
from helpers.dag_runs import load_dag_file, sync_dag_to_db, xcoms

from airflow_provider_mjvideo.testing import EmulatorConfig, MidjourneyEmulator
from airflow_provider_mjvideo.ui import paths
from airflow_provider_mjvideo.versions import HAS_UI_AND_REVIEW

pytestmark = pytest.mark.skipif(not HAS_UI_AND_REVIEW, reason="the Midjourney view needs Airflow 3.1+")

SHOWN_DAG_ID = "mjvideo_ui_shown"
PREFIX = paths.URL_PREFIX
DAGS = """
import pendulum
from airflow.sdk import DAG

from airflow_provider_mjvideo.operators.download import DownloadVideoOperator
from airflow_provider_mjvideo.operators.video import SubmitVideoOperator


def build(dag_id, destination):
    with DAG(dag_id, schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC")) as dag:
        generate = SubmitVideoOperator(
            task_id="generate", prompt=f"{dag_id}: a red kite <over> the hills", image="https://cdn.example.com/k.png",
            wait_for_completion=True, poll_interval=0.1,
        )
        extend = SubmitVideoOperator(
            task_id="extend", action="extend", index=1, mj_task_id=generate.output, prompt=f"{dag_id}: it dives",
            wait_for_completion=True, poll_interval=0.1,
        )
        save = DownloadVideoOperator(task_id="save", mj_task_id=extend.output, destination=destination, indexes=[0, 1])
        generate >> extend >> save
    return dag


hidden = build("mjvideo_ui_hidden", "%(hidden)s")
shown = build("mjvideo_ui_shown", "%(shown)s")
"""


@dataclass(frozen=True)
class Ran:
    """What one DAG's run left: its ids, and the saved files."""

    dag_id: str
    run_id: str
    generate: str
    extend: str
    folder: Path

    def run_page(self) -> str:
        return f"{PREFIX}/{paths.run_page(self.dag_id, self.run_id)}"

    def ti_page(self, task_id: str) -> str:
        return f"{PREFIX}/{paths.task_instance_page(self.dag_id, self.run_id, task_id)}"

    def file(self, index: int, mj_task_id: str | None = None) -> str:
        return f"{PREFIX}/{paths.clip_file(self.dag_id, self.run_id, mj_task_id or self.extend, index)}"

    def saved_bytes(self, index: int) -> bytes:
        return (self.folder / f"{self.extend}_{index}.mp4").read_bytes()


@pytest.fixture(scope="module")
def ran(airflow_db: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Ran]]:
    """Both DAGs run once with dag.test() (the hidden one first, so the shown run is the newest)."""
    import airflow.settings

    root = tmp_path_factory.mktemp("ui-routes")
    folders = {"hidden": root / "clips" / "hidden", "shown": root / "clips" / "shown"}
    emu = MidjourneyEmulator(EmulatorConfig(api_key=SECRET_KEY, video_duration=0.3, auth_style="bearer")).start()
    try:
        with pytest.MonkeyPatch.context() as patch:
            patch.setenv("AIRFLOW_CONN_MIDJOURNEY_DEFAULT", connection_json(emu))
            dag_folder = root / "dags"
            dag_folder.mkdir()
            path = dag_folder / "mjvideo_ui_dags.py"
            path.write_text(DAGS % {name: folder.as_uri() + "/" for name, folder in folders.items()})
            patch.setattr(airflow.settings, "DAGS_FOLDER", str(dag_folder))
            module = load_dag_file(path)
            found = {}
            for name in ("hidden", "shown"):
                dag = getattr(module, name)
                sync_dag_to_db(dag, dag_folder)
                run = dag.test()
                assert str(run.state) == "success", name
                values = xcoms(run.dag_id, run.run_id, raw=True)
                found[name] = Ran(
                    dag.dag_id,
                    run.run_id,
                    str(values[("generate", -1, "return_value")]),
                    str(values[("extend", -1, "return_value")]),
                    folders[name],
                )
        assert not emu.errors
        yield found
    finally:
        emu.stop()


@pytest.fixture(scope="module")
def shown(ran: dict[str, Ran]) -> Ran:
    return ran["shown"]


@pytest.fixture(scope="module")
def hidden(ran: dict[str, Ran]) -> Ran:
    return ran["hidden"]


def _routes(run: Ran) -> list[str]:
    return [
        f"{PREFIX}/",
        f"{PREFIX}/{paths.STYLESHEET}",
        run.run_page(),
        run.ti_page("save"),
        run.file(0),
    ]


# ------------------------------------------------------------------------------------------ login


def test_every_route_needs_a_login(airflow_api: Any, shown: Ran) -> None:
    anonymous = airflow_api.client()
    for route in _routes(shown):
        answer = anonymous.get(route)
        assert answer.status_code == 401, route
        assert answer.json() == {"detail": "Not authenticated"}, route


def test_a_forged_token_is_refused(airflow_api: Any, shown: Ran) -> None:
    forged = airflow_api.client()
    forged.cookies.set("_token", airflow_api.token("admin")[:-4] + "AAAA")
    for route in _routes(shown):
        assert forged.get(route).status_code == 403, route


@pytest.mark.parametrize("cookie", [True, False], ids=["ui-cookie", "bearer-header"])
def test_a_login_opens_every_route(airflow_api: Any, shown: Ran, cookie: bool) -> None:
    client = airflow_api.client("viewer", cookie=cookie)
    for route in _routes(shown):
        assert client.get(route).status_code == 200, route


# ------------------------------------------------------------------------------------------ per-DAG access


@pytest.mark.parametrize("route", ["run_page", "ti_page", "file"])
def test_a_dag_the_user_may_not_read_is_forbidden(airflow_api: Any, hidden: Ran, shown: Ran, route: str) -> None:
    assert hidden.dag_id == DENIED_DAG_ID
    outsider, viewer = airflow_api.client(OUTSIDER), airflow_api.client("viewer")
    arguments = ("save",) if route == "ti_page" else (0,) if route == "file" else ()
    denied = getattr(hidden, route)(*arguments)
    assert outsider.get(denied).status_code == 403
    assert outsider.get(denied).json() == {"detail": "Forbidden"}
    assert viewer.get(denied).status_code == 200  # the refusal is the outsider's alone
    assert outsider.get(getattr(shown, route)(*arguments)).status_code == 200


def test_the_navigation_lists_only_readable_dags_newest_first(airflow_api: Any, hidden: Ran, shown: Ran) -> None:
    everyone = airflow_api.client("viewer").get(f"{PREFIX}/").text
    assert everyone.index(shown.run_id) < everyone.index(hidden.run_id)  # the shown DAG ran last
    assert f"<code>{hidden.dag_id}</code>" in everyone

    mine = airflow_api.client(OUTSIDER).get(f"{PREFIX}/").text
    assert f"<code>{shown.dag_id}</code>" in mine
    assert hidden.dag_id not in mine
    assert hidden.generate not in mine
    assert hidden.extend not in mine


# ------------------------------------------------------------------------------------------ pages


def test_the_run_page_shows_the_chain_with_saved_clips_playing_and_unsaved_ones_linked(
    airflow_api: Any, shown: Ran
) -> None:
    page = airflow_api.client("viewer").get(shown.run_page())
    assert page.headers["content-type"].startswith("text/html")
    html = page.text
    assert html.index(f"<code>{shown.generate}</code>") < html.index(f"<code>{shown.extend}</code>")
    assert "mjvideo_ui_shown: a red kite &lt;over&gt; the hills" in html  # the prompt, escaped
    assert "<over>" not in html
    assert html.count("<video ") == 2  # clips 0 and 1 of the extension were saved
    for index in (0, 1):
        src = "../../../" + paths.clip_file(shown.dag_id, shown.run_id, shown.extend, index)
        assert f'src="{src}"' in html
    # The generated video's four clips and the extension's clips 2 and 3 were not saved: links that may expire.
    assert html.count("the server&#x27;s link may have expired") == 6
    assert html.count('target="_blank"') == 6
    assert f'href="../../../{paths.STYLESHEET}"' in html
    assert 'href="/' not in html  # every link relative
    assert 'src="/' not in html
    assert SECRET_KEY not in html


def test_a_task_instance_page_shows_only_that_tasks_clips(airflow_api: Any, shown: Ran) -> None:
    client = airflow_api.client("viewer")
    saved = client.get(shown.ti_page("save")).text
    assert f"<code>{shown.extend}</code>" in saved
    assert f"<code>{shown.generate}</code>" not in saved
    assert saved.count("<video ") == 2
    generated = client.get(shown.ti_page("generate")).text
    assert f"<code>{shown.generate}</code>" in generated
    assert f"<code>{shown.extend}</code>" not in generated
    assert generated.count("<video ") == 0
    # The UI leaves {MAP_INDEX} unfilled in an unmapped task instance's tab: it means the unmapped instance.
    unfilled = client.get(shown.ti_page("save") + "?map_index={MAP_INDEX}")
    assert unfilled.status_code == 200
    assert unfilled.text == saved
    assert client.get(shown.ti_page("save") + "?map_index=abc").status_code == 422


def test_an_unknown_run_is_not_found(airflow_api: Any, shown: Ran) -> None:
    answer = airflow_api.client("viewer").get(f"{PREFIX}/{paths.run_page(shown.dag_id, 'no_such_run')}")
    assert answer.status_code == 404
    assert "has no run no_such_run" in answer.text


def test_the_stylesheet_has_a_light_and_a_dark_theme(airflow_api: Any) -> None:
    answer = airflow_api.client("viewer").get(f"{PREFIX}/{paths.STYLESHEET}")
    assert answer.headers["content-type"].startswith("text/css")
    assert "prefers-color-scheme: dark" in answer.text
    assert ':root[data-theme="dark"]' in answer.text
    assert "url(" not in answer.text  # nothing fetched from anywhere
    assert "@import" not in answer.text


# ------------------------------------------------------------------------------------------ files and Range


def test_a_saved_clip_streams_whole_with_its_content_type(airflow_api: Any, shown: Ran) -> None:
    answer = airflow_api.client("viewer").get(shown.file(1))
    assert answer.status_code == 200
    assert answer.content == shown.saved_bytes(1)
    assert answer.headers["content-type"] == "video/mp4"
    assert answer.headers["accept-ranges"] == "bytes"
    assert answer.headers["content-length"] == str(len(shown.saved_bytes(1)))


@pytest.mark.parametrize(
    ("header", "first", "last"),
    [
        ("bytes=0-99", 0, 99),
        ("bytes=100-", 100, None),
        ("bytes=-50", -50, None),
        ("bytes=10-999999", 10, None),
    ],
)
def test_a_range_answers_206_with_content_range(
    airflow_api: Any, shown: Ran, header: str, first: int, last: int | None
) -> None:
    whole = shown.saved_bytes(0)
    size = len(whole)
    start = first if first >= 0 else size + first
    end = last if last is not None else size - 1
    answer = airflow_api.client("viewer").get(shown.file(0), headers={"Range": header})
    assert answer.status_code == 206
    assert answer.headers["content-range"] == f"bytes {start}-{end}/{size}"
    assert answer.headers["content-length"] == str(end - start + 1)
    assert answer.content == whole[start : end + 1]


@pytest.mark.parametrize("header", ["bytes={size}-", "bytes={size}-{more}", "bytes=9-3", "bytes=-0"])
def test_a_range_outside_the_file_answers_416(airflow_api: Any, shown: Ran, header: str) -> None:
    size = len(shown.saved_bytes(0))
    answer = airflow_api.client("viewer").get(shown.file(0), headers={"Range": header.format(size=size, more=size + 9)})
    assert answer.status_code == 416
    assert answer.headers["content-range"] == f"bytes */{size}"


@pytest.mark.parametrize("header", ["bytes=0-1,4-5", "items=0-5", "bytes=abc"])
def test_ranges_this_server_does_not_take_get_the_whole_file(airflow_api: Any, shown: Ran, header: str) -> None:
    answer = airflow_api.client("viewer").get(shown.file(0), headers={"Range": header})
    assert answer.status_code == 200
    assert answer.content == shown.saved_bytes(0)


# ------------------------------------------------------------------------------------------ what is never served


def test_only_files_a_download_of_that_run_saved_are_served(airflow_api: Any, shown: Ran, hidden: Ran) -> None:
    client = airflow_api.client("admin")  # may read both DAGs: every refusal below is about the file
    refused = {
        "unsaved clip 2 of the extension": shown.file(2),
        "a clip of the generated video (never saved)": shown.file(0, shown.generate),
        "the other DAG's clip under this run": shown.file(0, hidden.extend),
        "under another DAG": f"{PREFIX}/{paths.clip_file(hidden.dag_id, shown.run_id, shown.extend, 0)}",
        "an unknown run": f"{PREFIX}/{paths.clip_file(shown.dag_id, 'other_run', shown.extend, 0)}",
    }
    for why, route in refused.items():
        assert client.get(route).status_code == 404, why
    assert client.get(shown.file(0)).status_code == 200


@pytest.mark.parametrize(
    "tail",
    [
        quote("../../../etc/passwd", safe=""),
        "..%2F..%2Fmanifest.json/0",
        "{task}/4",
        "{task}/-1",
        quote("/etc/passwd", safe="") + "/0",
        "manifest.json/0",
        "{task}%2F..%2F..%2Fmanifest.json/0",
    ],
)
def test_path_tricks_in_the_file_route_reach_no_file(airflow_api: Any, shown: Ran, tail: str) -> None:
    route = f"{PREFIX}/{paths.run_page(shown.dag_id, shown.run_id)}/files/{tail.format(task=shown.extend)}"
    answer = airflow_api.client("admin").get(route)
    assert answer.status_code in (404, 422), route
    assert not answer.headers["content-type"].startswith(("video/", "image/"))
    assert b"root:" not in answer.content


def test_dot_segments_never_reach_the_view(airflow_api: Any, shown: Ran) -> None:
    """A client resolves ``../`` before sending: what arrives is another path, which the API server answers with
    the UI's page shell (200), never with a file."""
    route = f"{PREFIX}/{paths.run_page(shown.dag_id, shown.run_id)}/files/../../../../../../etc/passwd"
    answer = airflow_api.client("admin").get(route)
    assert answer.url.path == "/etc/passwd"
    assert answer.headers["content-type"].startswith("text/html")
    assert '<div id="root"' in answer.text  # the UI shell
    assert "root:" not in answer.text


@pytest.fixture
def tampered(shown: Ran) -> Iterator[Any]:
    """``tamper(index, **fields)`` rewrites clip ``index``'s entry in the extension's manifest; undone afterwards."""
    manifest = shown.folder / "manifests" / f"{shown.extend}.json"
    merged = shown.folder / "manifest.json"
    originals = {path: path.read_text() for path in (manifest, merged)}

    def tamper(index: int, **fields: str) -> None:
        for path in (manifest, merged):
            document = json.loads(originals[path])
            for entry in document["clips"]:
                if entry["mj_task_id"] == shown.extend and entry["index"] == index:
                    entry.update(fields)
            path.write_text(json.dumps(document))

    yield tamper
    for path, text in originals.items():
        path.write_text(text)


def test_a_manifest_entry_pointing_outside_its_folder_is_refused(
    airflow_api: Any, shown: Ran, tampered: Any, tmp_path: Path
) -> None:
    client = airflow_api.client("admin")
    secret = shown.folder.parent / "secret.mp4"
    shutil.copy(shown.folder / f"{shown.extend}_0.mp4", secret)

    tampered(0, file="../secret.mp4")
    assert client.get(shown.file(0)).status_code == 403
    tampered(0, file="secret.mp4")  # a bare name, but not the file the download recorded
    assert client.get(shown.file(0)).status_code == 403
    tampered(0, path="memory://another-bucket/" + f"{shown.extend}_0.mp4")  # another bucket: listed nowhere it says
    assert client.get(shown.file(0)).status_code == 404
    tampered(0, sha256="0" * 64)  # not the file the download saved
    assert client.get(shown.file(0)).status_code == 404
    assert client.get(shown.file(1)).status_code == 200  # the untouched entry still streams
