"""
The Midjourney view as an Airflow plugin: registered by the distribution, listed by ``airflow plugins``, and on
Airflow 3.0 (where plugin views and human-in-the-loop do not exist) present but empty, saying what it needs.
Also the pieces that need no server: the pages' rendering of pictures and clips, and the ``Range`` header.
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from pathlib import Path

import pytest
from helpers.plugin_entry_point import declared_plugins

from airflow_provider_mjvideo.get_provider_info import get_provider_info
from airflow_provider_mjvideo.ui import paths
from airflow_provider_mjvideo.ui.plugin import EXTERNAL_VIEWS, MidjourneyViewPlugin
from airflow_provider_mjvideo.ui.streaming import ByteRange, RangeNotSatisfiable, media_type, parse_range
from airflow_provider_mjvideo.versions import HAS_UI_AND_REVIEW

PLUGIN_CLASS = "airflow_provider_mjvideo.ui.plugin.MidjourneyViewPlugin"


def _airflow_plugins(tmp_path: Path) -> list[dict[str, object]]:
    """``airflow plugins -o json`` in a fresh home (Airflow 3.0 may log a line to stdout before the JSON)."""
    import os

    env = {**os.environ, "AIRFLOW_HOME": str(tmp_path)}
    done = subprocess.run(
        [sys.executable, "-m", "airflow", "plugins", "-o", "json"],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        check=False,
    )
    assert done.returncode == 0, f"airflow plugins failed:\n{done.stdout}\n{done.stderr}"
    return list(json.loads(done.stdout[done.stdout.index("[{") :]))


def test_the_distribution_and_the_provider_info_declare_the_same_plugin():
    assert declared_plugins() == {"midjourney": PLUGIN_CLASS.rpartition(".")[0] + ":MidjourneyViewPlugin"}
    assert get_provider_info()["plugins"] == [{"name": "midjourney", "plugin-class": PLUGIN_CLASS}]


@pytest.mark.skipif(not HAS_UI_AND_REVIEW, reason="plugin external views need Airflow 3.1+")
def test_airflow_plugins_lists_the_view_with_its_app_and_three_external_views(tmp_path: Path):
    (plugin,) = [row for row in _airflow_plugins(tmp_path) if row["name"] == "midjourney"]
    assert plugin["fastapi_apps"] == [
        {"app": "fastapi.applications.FastAPI", "url_prefix": "/midjourney", "name": "Midjourney view"}
    ]
    views = plugin["external_views"]
    assert [(view["name"], view["destination"]) for view in views] == [
        ("Midjourney", "nav"),
        ("Midjourney clips", "dag_run"),
        ("Midjourney clips", "task_instance"),
    ]
    assert all(not view["href"].startswith("/") for view in views)  # relative: the UI may sit under a prefix
    assert views == EXTERNAL_VIEWS


@pytest.mark.skipif(HAS_UI_AND_REVIEW, reason="what Airflow 3.0 shows")
def test_on_airflow_3_0_the_plugin_loads_empty_and_says_it_needs_3_1(tmp_path: Path, caplog):
    (plugin,) = [row for row in _airflow_plugins(tmp_path) if row["name"] == "midjourney"]
    assert not plugin.get("fastapi_apps")
    assert not plugin.get("external_views")
    assert MidjourneyViewPlugin.fastapi_apps == []
    with caplog.at_level(logging.WARNING, logger="airflow_provider_mjvideo.ui.plugin"):
        MidjourneyViewPlugin.on_load()
    assert "The Midjourney view (an Airflow UI plugin) needs Airflow 3.1 or newer (this is Airflow 3.0" in caplog.text


@pytest.mark.skipif(HAS_UI_AND_REVIEW, reason="what Airflow 3.0 shows")
def test_on_airflow_3_0_the_review_operator_says_it_needs_3_1():
    from airflow.providers.common.compat.sdk import AirflowOptionalProviderFeatureException

    with pytest.raises(AirflowOptionalProviderFeatureException, match=r"ChooseClipOperator .* needs Airflow 3\.1"):
        import airflow_provider_mjvideo.operators.review  # noqa: F401


def test_the_ui_paths_are_relative_and_escape_run_ids():
    run_id = "manual__2026-01-01T00:00:00+00:00"
    assert paths.run_page("d", run_id) == "dags/d/runs/manual__2026-01-01T00%3A00%3A00%2B00%3A00"
    assert paths.task_instance_page("d", "r", "t", 2) == "dags/d/runs/r/tasks/t?map_index=2"
    assert paths.clip_file("d", "r", "123", 3) == "dags/d/runs/r/files/123/3"
    assert [paths.up_to_root(path) for path in ("/", "/dags/d/runs/r", "/dags/d/runs/r/tasks/t")] == [
        "./",
        "../../../",
        "../../../../../",
    ]


# ------------------------------------------------------------------------------------------ rendering


@pytest.mark.skipif(not HAS_UI_AND_REVIEW, reason="the Midjourney view needs Airflow 3.1+")
def test_a_saved_picture_renders_as_img_and_a_saved_clip_as_video():
    from airflow_provider_mjvideo.ui.data import MjTaskView, RunView, SavedFile, TaskInstanceRef
    from airflow_provider_mjvideo.ui.render import run_page

    saver = TaskInstanceRef("save")

    def saved(mj_task_id: str, index: int, content_type: str) -> SavedFile:
        return SavedFile(mj_task_id, index, f"file:///x/{mj_task_id}_{index}", content_type, 10, "p", saver, None)

    picture = MjTaskView("1", {"id": "1", "kind": "image", "status": "SUCCESS", "image_urls": ["https://c/a.png"]})
    picture.saved[0] = saved("1", 0, "image/png")
    clip = MjTaskView("2", {"id": "2", "kind": "video", "status": "SUCCESS", "video_urls": ["https://c/0.mp4"] * 2})
    clip.saved[0] = saved("2", 0, "video/mp4")
    html = run_page("../../../", RunView("d", "r", "success", None, [picture, clip]))
    assert html.count("<img ") == 1
    assert '<img src="../../../dags/d/runs/r/files/1/0"' in html
    assert html.count("<video ") == 1
    assert '<video controls muted loop playsinline preload="metadata" src="../../../dags/d/runs/r/files/2/0"' in html
    assert html.count("clip 1 on the server") == 1  # the unsaved clip 1 of task 2 is a link


# ------------------------------------------------------------------------------------------ Range


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, None),
        ("bytes=0-0", ByteRange(0, 0, 100)),
        ("bytes=0-99", ByteRange(0, 99, 100)),
        ("bytes=10-500", ByteRange(10, 99, 100)),
        ("bytes=90-", ByteRange(90, 99, 100)),
        ("bytes=-10", ByteRange(90, 99, 100)),
        ("bytes=-500", ByteRange(0, 99, 100)),
        ("BYTES = 5 - 6", ByteRange(5, 6, 100)),
        ("bytes=0-1,5-6", None),
        ("bytes=-", None),
        ("lines=0-5", None),
    ],
)
def test_parse_range(header, expected):
    assert parse_range(header, 100) == expected


@pytest.mark.parametrize("header", ["bytes=100-", "bytes=100-200", "bytes=7-3", "bytes=-0"])
def test_parse_range_refuses_ranges_outside_the_file(header):
    with pytest.raises(RangeNotSatisfiable):
        parse_range(header, 100)


@pytest.mark.parametrize(
    ("recorded", "name", "expected"),
    [
        ("video/mp4", "a.mp4", "video/mp4"),
        ("image/png; charset=binary", "a.png", "image/png"),
        ("text/html", "a.mp4", "video/mp4"),
        ("", "a.webm", "video/webm"),
        ("text/html", "a.html", "application/octet-stream"),
    ],
)
def test_media_type_is_a_video_or_picture_type_or_octet_stream(recorded, name, expected):
    assert media_type(recorded, name) == expected
