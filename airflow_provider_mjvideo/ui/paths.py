"""
The Midjourney view's URL layout: where the app is mounted and the path of each page, relative to its root.

The one place that knows the layout: the routes, the pages' links, the plugin's external views and the review
operator's message all build their URLs here. Every path is relative (no leading slash): the UI may sit behind a
reverse proxy under a prefix, and the UI resolves relative ``href``\\s against its own base. Imports nothing from
Airflow or FastAPI, so a worker can build links without the web stack.
"""

from __future__ import annotations

from typing import Final
from urllib.parse import quote, urlencode

#: Where the API server mounts the app (``fastapi_apps``' ``url_prefix``).
URL_PREFIX: Final = "/midjourney"
#: The app's root, relative to the API server's base URL (the external views' ``href`` start).
APP_ROOT: Final = URL_PREFIX.lstrip("/") + "/"
#: The stylesheet, relative to the app's root.
STYLESHEET: Final = "static/mjvideo.css"


def _segment(value: str | int) -> str:
    """One path segment, every reserved character escaped (run ids hold ``:`` and ``+``)."""
    return quote(str(value), safe="")


def run_page(dag_id: str, run_id: str) -> str:
    """
    The page of one DAG run's Midjourney tasks, relative to the app's root.

    :param dag_id: the DAG.
    :param run_id: the run.
    """
    return f"dags/{_segment(dag_id)}/runs/{_segment(run_id)}"


def task_instance_page(dag_id: str, run_id: str, task_id: str, map_index: int = -1) -> str:
    """
    The page of one task instance's Midjourney tasks, relative to the app's root.

    :param dag_id: the DAG.
    :param run_id: the run.
    :param task_id: the Airflow task.
    :param map_index: the mapped instance; ``-1`` for an unmapped task.
    """
    page = f"{run_page(dag_id, run_id)}/tasks/{_segment(task_id)}"
    return page if map_index < 0 else f"{page}?{urlencode({'map_index': map_index})}"


def clip_file(dag_id: str, run_id: str, mj_task_id: str, index: int) -> str:
    """
    The saved file of one clip (or picture) of a run, streamed by the app, relative to the app's root.

    :param dag_id: the DAG whose download saved it.
    :param run_id: the run.
    :param mj_task_id: the Midjourney task.
    :param index: the clip's index in its task.
    """
    return f"{run_page(dag_id, run_id)}/files/{_segment(mj_task_id)}/{int(index)}"


def airflow_run_page(dag_id: str, run_id: str) -> str:
    """
    The Airflow UI's own page of a run, relative to the app's root (the app sits one level below the UI's base).

    :param dag_id: the DAG.
    :param run_id: the run.
    """
    return f"../dags/{_segment(dag_id)}/runs/{_segment(run_id)}"


def up_to_root(route_path: str) -> str:
    """
    The relative prefix from a page back to the app's root: ``"./"`` for ``/``, ``"../../../"`` for
    ``/dags/d/runs/r`` (a browser resolves a relative link against the page's folder).

    :param route_path: the page's path inside the app, starting with ``/``.
    """
    depth = route_path.count("/") - 1
    return "../" * depth if depth > 0 else "./"


# The external views' hrefs: the UI replaces {DAG_ID}, {RUN_ID}, {TASK_ID} and {MAP_INDEX} (URL-encoded) itself.
NAV_HREF: Final = APP_ROOT
DAG_RUN_HREF: Final = APP_ROOT + "dags/{DAG_ID}/runs/{RUN_ID}"
TASK_INSTANCE_HREF: Final = APP_ROOT + "dags/{DAG_ID}/runs/{RUN_ID}/tasks/{TASK_ID}?map_index={MAP_INDEX}"
