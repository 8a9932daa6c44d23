"""
The Airflow plugin that puts the Midjourney view into the Airflow UI (Airflow 3.1+).

Registered by the distribution itself (the ``airflow.plugins`` entry point, and the ``plugins`` list of
``get_provider_info()``), so ``airflow plugins`` lists it as soon as the package is installed. It mounts the view's
FastAPI app on the API server and adds three external views: **Midjourney** in the navigation, and a tab on every
DAG run and task instance.

Every Airflow process loads plugins (task processes too), so this module imports neither FastAPI nor the API
server: the app is built the first time the API server asks for it. On Airflow 3.0 the plugin adds nothing and
says, once, that the view needs 3.1.
"""

from __future__ import annotations

import logging
from functools import cache
from typing import Any

from airflow.plugins_manager import AirflowPlugin

from airflow_provider_mjvideo.ui import paths
from airflow_provider_mjvideo.versions import needs_airflow_3_1

log = logging.getLogger(__name__)

#: Why the view is missing on this Airflow, or ``None`` where it works.
UNAVAILABLE = needs_airflow_3_1("The Midjourney view (an Airflow UI plugin)")

#: The UI's entries: the navigation page and the two tabs, each an iframe on the app's pages.
EXTERNAL_VIEWS: list[dict[str, Any]] = [
    {"name": "Midjourney", "href": paths.NAV_HREF, "destination": "nav", "url_route": "midjourney"},
    {
        "name": "Midjourney clips",
        "href": paths.DAG_RUN_HREF,
        "destination": "dag_run",
        "url_route": "midjourney-run",
    },
    {
        "name": "Midjourney clips",
        "href": paths.TASK_INSTANCE_HREF,
        "destination": "task_instance",
        "url_route": "midjourney-task",
    },
]


@cache
def _app() -> Any:
    from airflow_provider_mjvideo.ui.app import create_app

    return create_app()


class _FastApiApps:
    """``fastapi_apps``, built on first read (Airflow reads it from the plugin class or from an instance)."""

    def __get__(self, instance: object, owner: type | None = None) -> list[dict[str, Any]]:
        if UNAVAILABLE:
            return []
        return [{"app": _app(), "url_prefix": paths.URL_PREFIX, "name": "Midjourney view"}]


class MidjourneyViewPlugin(AirflowPlugin):
    """The Midjourney view: recent runs' clips in the navigation, and a clips tab on runs and task instances."""

    name = "midjourney"
    fastapi_apps = _FastApiApps()
    external_views = [] if UNAVAILABLE else EXTERNAL_VIEWS

    @classmethod
    def on_load(cls, *args: Any, **kwargs: Any) -> None:
        """Say once, where the view cannot work, what it needs."""
        if UNAVAILABLE:
            log.warning("%s: the plugin adds nothing here", UNAVAILABLE)
