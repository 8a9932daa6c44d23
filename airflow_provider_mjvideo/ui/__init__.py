"""
The Midjourney view in the Airflow UI (Airflow 3.1+): an Airflow plugin shipped with the provider.

* :mod:`~airflow_provider_mjvideo.ui.plugin`: the ``AirflowPlugin`` (external views, the mounted app).
* :mod:`~airflow_provider_mjvideo.ui.app`: the FastAPI app and its routes, behind Airflow's own auth.
* :mod:`~airflow_provider_mjvideo.ui.data`: what the pages show, read from XComs and the downloads' manifests.
* :mod:`~airflow_provider_mjvideo.ui.streaming`: saved files streamed from storage with ``Range`` support.
* :mod:`~airflow_provider_mjvideo.ui.render`: the HTML; ``static/mjvideo.css``: its one stylesheet.
* :mod:`~airflow_provider_mjvideo.ui.paths`: the URL layout, shared with the review operator's links.

Importing this package imports nothing else (workers load plugins too).
"""
