"""
The Midjourney view's FastAPI app, mounted by the API server at :data:`~airflow_provider_mjvideo.ui.paths.URL_PREFIX`.

Access, with the API server's own dependencies (``airflow.api_fastapi.core_api.security``), on every route:

* a valid Airflow login (``GetUserDep``: the UI's ``_token`` cookie or a bearer token), else ``401``;
* the navigation page lists only DAGs the user may read (``ReadableDagsFilterDep``);
* a run's, a task instance's and a file's routes need read access to their DAG (``requires_access_dag``), else
  ``403``;
* a file is served only when a download of that run saved it and its folder's manifest lists it
  (:func:`~airflow_provider_mjvideo.ui.data.saved_file`): the request names a task id and an index, never a path;
  an entry pointing outside its folder is ``403``, anything unlisted ``404``.

The routes are plain ``def`` functions: FastAPI runs them (database and storage I/O) in its thread pool.
"""

from __future__ import annotations

from importlib import resources
from typing import Annotated, Any

from airflow.api_fastapi.app import get_auth_manager
from airflow.api_fastapi.auth.managers.models.resource_details import DagAccessEntity
from airflow.api_fastapi.common.db.common import SessionDep
from airflow.api_fastapi.core_api import security
from airflow.api_fastapi.core_api.security import GetUserDep, ReadableDagsFilterDep, requires_access_dag
from fastapi import Depends, FastAPI, HTTPException, Path, Request, Response, status
from fastapi.responses import HTMLResponse, StreamingResponse

from airflow_provider_mjvideo.ui import data, paths, render
from airflow_provider_mjvideo.ui.streaming import RangeNotSatisfiable, file_size, media_type, parse_range, read_chunks
from airflow_provider_mjvideo.validation import MAX_INDEX

#: Read access to the DAG the route names (its ``dag_id`` path parameter); the data shown are its runs' XComs.
_READ_DAG = Depends(requires_access_dag(method="GET", access_entity=DagAccessEntity.XCOM))
#: What the UI puts in a task instance tab's URL for an unmapped task: it fills ``{MAP_INDEX}`` only for mapped ones.
_UNFILLED_MAP_INDEX = "{MAP_INDEX}"


def _root(request: Request) -> str:
    """The relative prefix from the requested page back to the app's root."""
    path, mounted_at = request.url.path, str(request.scope.get("root_path", ""))
    # Starlette 0.35+ keeps the whole path in a mounted app's scope and the mount point in root_path.
    inside = path[len(mounted_at) :] if mounted_at and path.startswith(mounted_at) else path
    return paths.up_to_root(inside or "/")


def _map_index(value: str) -> int:
    if value == _UNFILLED_MAP_INDEX:
        return -1
    try:
        return int(value)
    except ValueError:
        raise HTTPException(422, f"map_index must be an integer, got {value!r:.40}") from None


def _html(body: str, status_code: int = 200) -> HTMLResponse:
    return HTMLResponse(body, status_code=status_code, headers={"Cache-Control": "no-store"})


def _stylesheet(_user: GetUserDep) -> Response:
    css = resources.files(__package__).joinpath("static").joinpath("mjvideo.css").read_text(encoding="utf-8")
    return Response(css, media_type="text/css", headers={"Cache-Control": "private, max-age=300"})


def _runs(request: Request, readable: ReadableDagsFilterDep, session: SessionDep, _user: GetUserDep) -> HTMLResponse:
    runs = data.recent_runs(session, readable.value or set())
    return _html(render.runs_page(_root(request), runs))


def _run(request: Request, dag_id: str, run_id: str, session: SessionDep) -> HTMLResponse:
    root = _root(request)
    run = data.run_view(session, dag_id, run_id)
    if run is None:
        return _html(render.message_page(root, "No such run", f"{dag_id} has no run {run_id}."), 404)
    return _html(render.run_page(root, run))


def _task_instance(
    request: Request, dag_id: str, run_id: str, task_id: str, session: SessionDep, map_index: str = "-1"
) -> HTMLResponse:
    root = _root(request)
    run = data.run_view(session, dag_id, run_id)
    if run is None:
        return _html(render.message_page(root, "No such run", f"{dag_id} has no run {run_id}."), 404)
    ref = data.TaskInstanceRef(task_id, _map_index(map_index))
    tasks = run.for_task_instance(ref, data.returned_strings(session, dag_id, run_id, ref))
    return _html(render.task_instance_page(root, run, ref, tasks))


def _file(
    request: Request,
    dag_id: str,
    run_id: str,
    session: SessionDep,
    mj_task_id: Annotated[str, Path(max_length=128, pattern=r"^[A-Za-z0-9_.-]+$")],
    index: Annotated[int, Path(ge=0, le=MAX_INDEX)],
) -> Response:
    try:
        saved = data.saved_file(session, dag_id, run_id, mj_task_id, index)
    except data.RefusedFile as refused:
        raise HTTPException(status.HTTP_403_FORBIDDEN, f"Not served: {refused}") from None
    if saved is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"No download of this run saved file {index} of {mj_task_id}")
    target = saved.storage_path()
    try:
        size = file_size(target)
    except FileNotFoundError:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"The saved file is gone from {saved.path}") from None
    headers = {
        "Accept-Ranges": "bytes",
        "Cache-Control": "private, max-age=3600",
        "Content-Disposition": "inline",
        "X-Content-Type-Options": "nosniff",
    }
    content_type = media_type(saved.content_type, saved.file_name)
    try:
        wanted = parse_range(request.headers.get("range"), size)
    except RangeNotSatisfiable:
        return Response(status_code=416, headers={**headers, "Content-Range": f"bytes */{size}"})
    start, length, code = (0, size, 200) if wanted is None else (wanted.start, wanted.length, 206)
    if wanted is not None:
        headers["Content-Range"] = wanted.content_range
    headers["Content-Length"] = str(length)
    return StreamingResponse(
        read_chunks(target, start, length), status_code=code, media_type=content_type, headers=headers
    )


def _use_the_api_servers_auth_manager(app: FastAPI) -> None:
    """
    Let ``ReadableDagsFilterDep`` find the auth manager in a mounted app.

    Starlette hands a mounted app's routes their own app as ``request.app``, and the API server keeps its auth
    manager in the *main* app's state, which ``auth_manager_from_app`` reads (Airflow 3.3); the same instance is
    what ``get_auth_manager()`` returns.
    """
    resolver = getattr(security, "auth_manager_from_app", None)
    if resolver is not None:
        app.dependency_overrides[resolver] = get_auth_manager


def create_app() -> FastAPI:
    """The Midjourney view's app: its pages, the files' stream and the stylesheet, all behind Airflow's login."""
    app = FastAPI(title="Midjourney view", docs_url=None, redoc_url=None, openapi_url=None)
    _use_the_api_servers_auth_manager(app)
    html: dict[str, Any] = {"response_class": HTMLResponse}
    app.add_api_route("/", _runs, methods=["GET"], **html)
    app.add_api_route("/" + paths.STYLESHEET, _stylesheet, methods=["GET"])
    app.add_api_route("/dags/{dag_id}/runs/{run_id}", _run, methods=["GET"], dependencies=[_READ_DAG], **html)
    app.add_api_route(
        "/dags/{dag_id}/runs/{run_id}/tasks/{task_id}",
        _task_instance,
        methods=["GET"],
        dependencies=[_READ_DAG],
        **html,
    )
    app.add_api_route(
        "/dags/{dag_id}/runs/{run_id}/files/{mj_task_id}/{index}", _file, methods=["GET"], dependencies=[_READ_DAG]
    )
    return app
