"""Hooks for midjourney-proxy compatible video APIs, built on the http provider's HttpHook/HttpAsyncHook."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterable, Iterator
from contextlib import asynccontextmanager
from functools import cached_property
from types import SimpleNamespace
from typing import Any, Final

import aiohttp
import requests
import tenacity
from airflow.providers.common.compat.sdk import AirflowNotFoundException, mask_secret
from airflow.providers.common.compat.version_compat import AIRFLOW_V_3_2_PLUS
from airflow.providers.http.hooks.http import AsyncHttpSession, HttpAsyncHook, HttpHook
from airflow.providers.http.hooks.http import SessionConfig as _SessionConfig
from requests.auth import AuthBase

from airflow_provider_mjvideo.connection import (
    DEFAULT_CONN_ID,
    DEFAULT_LIST_CHUNK_SIZE,
    OWN_EXTRA_KEYS,
    ConnectionSettings,
    auth_headers,
)
from airflow_provider_mjvideo.exceptions import (
    MidjourneyAuthError,
    MidjourneyConfigurationError,
    MidjourneyConnectionError,
    MidjourneyError,
    MidjourneyNotFoundError,
    MidjourneySubmitOutcomeUnknownError,
    MidjourneyTransientError,
)
from airflow_provider_mjvideo.models import MidjourneyTask
from airflow_provider_mjvideo.responses import (
    ApiResponse,
    parse_cancel,
    parse_fetch,
    parse_submit,
    parse_task_list,
)
from airflow_provider_mjvideo.retrying import RetryPolicy
from airflow_provider_mjvideo.validation import build_video_request, check_positive_number, check_task_id
from airflow_provider_mjvideo.waiting import WaitTracker, result_or_raise

SUBMIT_VIDEO_PATH: Final = "/mj/submit/video"
LIST_PATH: Final = "/mj/task/list-by-condition"


def fetch_path(mj_task_id: str) -> str:
    """The API path that fetches one task."""
    return f"/mj/task/{mj_task_id}/fetch"


def cancel_path(mj_task_id: str) -> str:
    """The API path that cancels one task."""
    return f"/mj/task/{mj_task_id}/cancel"


def chunked(items: list[str], size: int) -> Iterator[list[str]]:
    """Yield consecutive slices of ``items`` of at most ``size`` elements."""
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _undefined_connection(conn_id: str) -> str:
    return (
        f"Connection {conn_id!r} is not defined: add it in the Airflow UI (type Midjourney) "
        f"or set AIRFLOW_CONN_{conn_id.upper()}"
    )


def _without_key(body: bytes, api_key: str) -> bytes:
    """The body with every copy of the API key masked: a server echoing it must not put it into errors or logs."""
    key = api_key.encode()
    return body.replace(key, b"***") if key and key in body else body


def _dedupe_ids(ids: Iterable[Any]) -> list[str]:
    seen: dict[str, None] = {}
    for raw in ids:
        seen.setdefault(check_task_id("ids", raw), None)
    return list(seen)


class _ApiKeyAuth(AuthBase):
    """requests auth that adds the key header at send time, so it never sits in ``session.headers``."""

    def __init__(self, auth_style: str, api_key: str) -> None:
        self._headers = auth_headers(auth_style, api_key)

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers.update(self._headers)
        return request

    def __repr__(self) -> str:
        return "_ApiKeyAuth(<hidden>)"


class _ConnectionFields:
    """Connection-form declarations shared by the sync and async hooks (Airflow 3.0/3.1 UI)."""

    conn_name_attr = "midjourney_conn_id"
    default_conn_name = DEFAULT_CONN_ID
    conn_type = "midjourney"
    hook_name = "Midjourney"

    @classmethod
    def get_connection_form_widgets(cls) -> dict[str, Any]:
        """Extra fields of the connection form on Airflow 3.0/3.1 (3.2+ reads ``conn-fields``)."""
        from flask_appbuilder.fieldwidgets import BS3TextFieldWidget
        from flask_babel import lazy_gettext
        from wtforms import BooleanField, IntegerField, StringField
        from wtforms.validators import NumberRange, Optional, any_of  # any_of: what Airflow 3.0's form reader mocks

        return {
            "auth_style": StringField(
                lazy_gettext("Auth style"),
                widget=BS3TextFieldWidget(),
                validators=[Optional(), any_of(["bearer", "mj-api-secret", "raw"])],
                default="bearer",
                description="bearer, mj-api-secret or raw",
            ),
            "mode": StringField(
                lazy_gettext("Speed mode"),
                widget=BS3TextFieldWidget(),
                validators=[Optional(), any_of(["fast", "relax", "turbo"])],
                description="fast, relax, turbo or empty",
            ),
            "timeout": IntegerField(
                lazy_gettext("Request timeout (seconds)"),
                widget=BS3TextFieldWidget(),
                validators=[Optional(), NumberRange(min=1)],
                default=30,
                description="timeout of one HTTP request, in seconds",
            ),
            "batch_polling": BooleanField(
                lazy_gettext("Batch polling"),
                default=True,
                description="deferred waits share one list-by-condition poller (off: one fetch per task)",
            ),
            "list_chunk_size": IntegerField(
                lazy_gettext("List chunk size"),
                widget=BS3TextFieldWidget(),
                validators=[Optional(), NumberRange(min=1)],
                default=DEFAULT_LIST_CHUNK_SIZE,
                description="the most task ids in one list-by-condition request",
            ),
        }

    @classmethod
    def get_ui_field_behaviour(cls) -> dict[str, Any]:
        """Hidden, relabelled and placeholder fields of the connection form, in the hook method's snake_case keys."""
        from airflow_provider_mjvideo.get_provider_info import CONNECTION_UI_FIELD_BEHAVIOUR

        return {key.replace("-", "_"): value for key, value in CONNECTION_UI_FIELD_BEHAVIOUR.items()}


class MidjourneyHook(_ConnectionFields, HttpHook):
    """
    Talk to a midjourney-proxy compatible API (trueai, novicezk, new-api gateways) over a ``midjourney`` connection.

    The connection's host is the base URL (scheme, host, optional path prefix), its password the API
    key; extras ``auth_style`` (``bearer``/``mj-api-secret``/``raw``), ``mode``
    (``fast``/``relax``/``turbo``) and ``timeout`` (seconds per request).

    Reads (fetch, list, cancel) are retried on connection errors, timeouts, HTTP 429 (honouring
    ``Retry-After``) and 5xx. A submission is resent only when the server certainly did not take it
    (connection refused, 429, 503, queue full); after an ambiguous failure it raises
    :class:`MidjourneySubmitOutcomeUnknownError` instead of risking a second paid video.

    :param midjourney_conn_id: the Airflow connection id.
    :param retry_limit: attempts per request, the first included.
    :param retry_delay: backoff scale in seconds.
    :param retry_max_delay: the longest single wait between attempts, in seconds.
    :param list_chunk_size: ids per ``list-by-condition`` request.
    """

    if not AIRFLOW_V_3_2_PLUS:
        # Airflow 3.0/3.1 build the connection form from these two methods, and only when the registered
        # hook class defines them itself (its __dict__). 3.2+ read conn-fields/ui-field-behaviour from
        # get_provider_info() and deprecate the methods, so there they stay inherited (and unused).
        get_connection_form_widgets = _ConnectionFields.__dict__["get_connection_form_widgets"]
        get_ui_field_behaviour = _ConnectionFields.__dict__["get_ui_field_behaviour"]

    def __init__(
        self,
        midjourney_conn_id: str = _ConnectionFields.default_conn_name,
        *,
        retry_limit: int = 6,
        retry_delay: float = 1.0,
        retry_max_delay: float = 30.0,
        list_chunk_size: int = DEFAULT_LIST_CHUNK_SIZE,
        **kwargs: Any,
    ) -> None:
        super().__init__(method="POST", http_conn_id=midjourney_conn_id, **kwargs)
        self.midjourney_conn_id = midjourney_conn_id
        self.retry_policy = RetryPolicy(retry_limit, retry_delay, retry_max_delay)
        if isinstance(list_chunk_size, bool) or not isinstance(list_chunk_size, int) or list_chunk_size < 1:
            raise MidjourneyConfigurationError(f"list_chunk_size must be a positive integer, got {list_chunk_size!r}")
        self.list_chunk_size = list_chunk_size
        self._session: requests.Session | None = None

    # ---------------------------------------------------------------- connection and session

    @cached_property
    def settings(self) -> ConnectionSettings:
        """The connection's settings, read once; the key is registered with Airflow's secret masker."""
        try:
            conn = self.get_connection(self.midjourney_conn_id)
        except AirflowNotFoundException:
            raise MidjourneyConfigurationError(_undefined_connection(self.midjourney_conn_id)) from None
        if conn.password:
            mask_secret(conn.password)
        return ConnectionSettings.from_parts(
            conn_id=self.midjourney_conn_id,
            host=conn.host,
            schema=conn.schema,
            port=conn.port,
            password=conn.password,
            extra=conn.extra_dejson,
        )

    def _set_base_url(self, connection: Any) -> None:
        self.base_url = self.settings.base_url
        self._base_url_initialized = True

    def _configure_session_from_auth(self, session: requests.Session, connection: Any) -> requests.Session:
        session.auth = _ApiKeyAuth(self.settings.auth_style, self.settings.api_key)
        return session

    def _configure_session_from_extra(
        self, session: requests.Session, connection: Any, extra_options: dict[str, Any]
    ) -> requests.Session:
        # HttpHook sends unknown extras as headers: keep ours (auth_style, mode, timeout) out of them.
        extra = {key: value for key, value in connection.extra_dejson.items() if key not in OWN_EXTRA_KEYS}
        return super()._configure_session_from_extra(
            session, SimpleNamespace(extra_dejson=extra, host=connection.host), extra_options
        )

    def get_conn(
        self, headers: dict[Any, Any] | None = None, extra_options: dict[str, Any] | None = None
    ) -> requests.Session:
        """Return the requests session for this API (made once, reused for keep-alive)."""
        self.settings  # noqa: B018 - resolve the connection first, for its clear errors
        if self._session is None or headers or extra_options:
            session = super().get_conn(
                {"Content-Type": "application/json", "Accept": "application/json", **(headers or {})},
                extra_options,
            )
            if headers or extra_options:
                return session
            self._session = session
        return self._session

    def close(self) -> None:
        """Close the pooled HTTP connections."""
        if self._session is not None:
            self._session.close()
            self._session = None

    # ---------------------------------------------------------------- transport

    def _send_once(self, method: str, path: str, body: Any, what: str) -> ApiResponse:
        session = self.get_conn()
        request = requests.Request(method, self.url_from_endpoint(self.settings.endpoint(path)), json=body)
        prepared = session.prepare_request(request)
        try:
            response = self.run_and_check(
                session, prepared, {"check_response": False, "timeout": self.settings.timeout}
            )
        except requests.exceptions.ConnectTimeout as err:
            raise MidjourneyConnectionError(f"Could not connect for {what}: {err}", safe_to_resend=True) from None
        except requests.exceptions.ConnectionError as err:
            refused = "refused" in str(err).lower() or "NewConnectionError" in repr(err)
            raise MidjourneyConnectionError(
                f"Network error on {what}: {type(err).__name__}", safe_to_resend=refused
            ) from None
        except requests.exceptions.Timeout as err:
            raise MidjourneyConnectionError(f"Timed out on {what}: {type(err).__name__}") from None
        except requests.exceptions.RequestException as err:
            raise MidjourneyConnectionError(f"Request failed on {what}: {type(err).__name__}") from None
        body = _without_key(response.content, self.settings.api_key)
        return ApiResponse(status=response.status_code, body=body, headers=response.headers, what=what)

    def _call(self, method: str, path: str, body: Any, what: str, parse: Any, *, resend_safe_only: bool = False) -> Any:
        """Send one API request with the retry policy and return ``parse(response)``."""
        retrying = tenacity.Retrying(
            **self.retry_policy.tenacity_kwargs(resend_safe_only=resend_safe_only, logger=self.log, what=what)
        )
        return retrying(lambda: parse(self._send_once(method, path, body, what)))

    # ---------------------------------------------------------------- API

    def submit_video(
        self,
        prompt: str,
        image: str | None = None,
        motion: str = "low",
        *,
        action: str | None = None,
        index: int | str | None = None,
        mj_task_id: str | None = None,
        notify_hook: str | None = None,
        state: str | None = None,
        extra_body: dict[str, Any] | None = None,
    ) -> str:
        """
        Submit an image-to-video job, or an extend of one clip of an earlier video; return the task id.

        Everything is validated before any request is sent.

        :param prompt: the text prompt (required, also for extends).
        :param image: URL or base64 data URI of the first frame; required unless ``action="extend"``.
        :param motion: ``"low"`` or ``"high"``.
        :param action: ``None`` for a new video or ``"extend"``.
        :param index: the parent's clip to extend, 0-3 (``"2"`` accepted, sent as ``2``).
        :param mj_task_id: the parent video's task id, for ``action="extend"`` (sent as ``taskId``).
        :param notify_hook: an http(s) URL the server POSTs progress to.
        :param state: free text echoed back on the task (at most 255 characters).
        :param extra_body: server-specific fields such as ``batchSize``, ``videoType``, ``endImage``, ``loop``.
        :raises MidjourneyValidationError: a bad parameter (no request sent).
        :raises MidjourneySubmitOutcomeUnknownError: the server may have accepted the job; not resent.
        """
        video = build_video_request(
            prompt,
            image,
            motion,
            action=action,
            index=index,
            mj_task_id=mj_task_id,
            notify_hook=notify_hook,
            state=state,
            extra_body=extra_body,
        )
        assert video is not None  # every argument is a concrete value here
        what = "video extend submission" if video.action else "video submission"
        try:
            task_id: str = self._call(
                "POST", SUBMIT_VIDEO_PATH, video.to_body(), what, parse_submit, resend_safe_only=True
            )
        except MidjourneyTransientError as err:
            if err.safe_to_resend:
                raise
            raise MidjourneySubmitOutcomeUnknownError(
                f"The {what} may or may not have been accepted ({err.message}); it was not resent, "
                "so that no second video is paid for. Check the server's task list before retrying",
                http_status=err.http_status,
                code=err.code,
                description=err.description,
            ) from err
        self.log.info("Midjourney accepted the %s: task id %s", what, task_id)
        return task_id

    def find_task(self, mj_task_id: str) -> MidjourneyTask | None:
        """
        Fetch one task, or return ``None`` when the server does not know the id (yet).

        :param mj_task_id: the task id.
        """
        mj_task_id = check_task_id("mj_task_id", mj_task_id)
        return self._call("GET", fetch_path(mj_task_id), None, f"fetch of task {mj_task_id}", parse_fetch)

    def get_task(self, mj_task_id: str) -> MidjourneyTask:
        """
        Fetch one task.

        :param mj_task_id: the task id.
        :raises MidjourneyNotFoundError: the server does not know the id.
        """
        task = self.find_task(mj_task_id)
        if task is None:
            raise MidjourneyNotFoundError(f"Midjourney task {mj_task_id} not found")
        return task

    def get_tasks(self, ids: Iterable[str]) -> list[MidjourneyTask]:
        """
        Fetch many tasks with ``POST /mj/task/list-by-condition``, ``list_chunk_size`` ids per request.

        Unknown ids are left out, as the servers do. The result follows the order of ``ids``.

        :param ids: task ids (duplicates are sent once).
        """
        wanted = _dedupe_ids(ids)
        found: dict[str, MidjourneyTask] = {}
        for chunk in chunked(wanted, self.list_chunk_size):
            what = f"list of {len(chunk)} task(s)"
            for task in self._call("POST", LIST_PATH, {"ids": chunk}, what, parse_task_list):
                found[task.id] = task
        return [found[task_id] for task_id in wanted if task_id in found]

    def cancel_task(self, mj_task_id: str) -> bool:
        """
        Ask the server to cancel a task (trueai supports it; others answer 404). Best effort.

        :param mj_task_id: the task id.
        :returns: whether the server accepted the cancel.
        """
        mj_task_id = check_task_id("mj_task_id", mj_task_id)
        try:
            accepted, words = self._call(
                "POST", cancel_path(mj_task_id), {}, f"cancel of task {mj_task_id}", parse_cancel
            )
        except MidjourneyNotFoundError:
            self.log.warning("The server cannot cancel task %s (no cancel route, or unknown id)", mj_task_id)
            return False
        self.log.info("Cancel of Midjourney task %s %s %s", mj_task_id, "accepted" if accepted else "refused", words)
        return accepted

    def wait_for_task(
        self,
        mj_task_id: str,
        poll_interval: float = 10.0,
        timeout: float | None = 3600.0,
        *,
        started_at: float | None = None,
    ) -> MidjourneyTask:
        """
        Poll until the task finishes; return it on SUCCESS (with video URLs).

        :param mj_task_id: the task id.
        :param poll_interval: seconds between polls.
        :param timeout: seconds to wait at most (``None``: no limit).
        :param started_at: epoch seconds when the task was submitted (for the unknown-id grace).
        :raises MidjourneyTaskFailedError: FAILURE, CANCEL or MODAL.
        :raises MidjourneyWaitTimeoutError: the timeout passed first.
        """
        mj_task_id = check_task_id("mj_task_id", mj_task_id)
        interval = check_positive_number("poll_interval", poll_interval)
        limit = check_positive_number("timeout", timeout, allow_none=True)
        now = time.time()
        tracker = WaitTracker(mj_task_id, started_at=started_at or now, deadline=now + limit if limit else None)
        while True:
            try:
                decision = tracker.observe(self.find_task(mj_task_id))
            except MidjourneyError as err:
                decision = tracker.observe_error(err)
            if decision.progress_changed or decision.task is None:
                self.log.info("Midjourney task %s: %s", mj_task_id, decision.message)
            if decision.done:
                break
            remaining = tracker.deadline - time.time() if tracker.deadline else interval
            time.sleep(max(0.0, min(interval, remaining)))
        result_or_raise(decision.to_event(mj_task_id))
        assert decision.task is not None
        return decision.task

    def test_connection(self) -> tuple[bool, str]:
        """
        Check the URL and the key with one cheap read; tell "cannot reach" from "authentication failed".

        :returns: ``(ok, message)`` as Airflow's Test button and ``airflow connections test`` expect.
        """
        try:
            settings = self.settings
        except MidjourneyError as err:
            return False, str(err)
        what = "connection test"
        try:
            response = self._send_once("POST", LIST_PATH, {"ids": ["0"]}, what)
            if response.status in (404, 405):
                # Some servers lack list-by-condition: probe the fetch route with an id that cannot exist.
                response = self._send_once("GET", fetch_path("0"), None, what)
                if response.status == 404:
                    raise MidjourneyNotFoundError("no task routes answer there", http_status=404)
                parse_fetch(response)
            else:
                parse_task_list(response)
        except MidjourneyAuthError as err:
            return False, f"Authentication failed at {settings.base_url}: {err}"
        except MidjourneyConnectionError as err:
            return False, f"Cannot reach {settings.base_url}: {err}"
        except MidjourneyNotFoundError as err:
            return False, f"Cannot find the API at {settings.base_url}: check the base URL and its path prefix ({err})"
        except MidjourneyError as err:
            return False, f"{settings.base_url} answered, but not like a midjourney-proxy API: {err}"
        return True, f"Connected to {settings.base_url}; the API key was accepted"


class MidjourneyAsyncHook(_ConnectionFields, HttpAsyncHook):
    """
    Async counterpart of :class:`MidjourneyHook` for triggers: fetch, list and cancel (no submission).

    Open :meth:`api` once per ``run()``: it reads the connection with the async compat helper (never
    the synchronous ``get_connection``) and keeps one aiohttp session for all polls.

    :param midjourney_conn_id: the Airflow connection id.
    :param retry_limit: attempts per request, the first included.
    :param retry_delay: backoff scale in seconds.
    :param retry_max_delay: the longest single wait between attempts, in seconds.
    :param list_chunk_size: ids per ``list-by-condition`` request; ``None``: the connection's
        ``list_chunk_size`` extra (default 100).
    """

    def __init__(
        self,
        midjourney_conn_id: str = _ConnectionFields.default_conn_name,
        *,
        retry_limit: int = 6,
        retry_delay: float = 1.0,
        retry_max_delay: float = 30.0,
        list_chunk_size: int | None = None,
    ) -> None:
        # HttpAsyncHook's own retry loop is set to one attempt: the policy below decides retries.
        super().__init__(method="GET", http_conn_id=midjourney_conn_id, retry_limit=1)
        self.midjourney_conn_id = midjourney_conn_id
        self.retry_policy = RetryPolicy(retry_limit, retry_delay, retry_max_delay)
        self.list_chunk_size = list_chunk_size
        self._settings: ConnectionSettings | None = None

    async def load_settings(self) -> ConnectionSettings:
        """Read the connection once, asynchronously (safe inside the triggerer)."""
        if self._settings is None:
            from airflow.providers.common.compat.connection import get_async_connection, get_async_extra_dejson

            try:
                conn = await get_async_connection(self.midjourney_conn_id, hook=self)
            except AirflowNotFoundException:
                raise MidjourneyConfigurationError(_undefined_connection(self.midjourney_conn_id)) from None
            extra = await get_async_extra_dejson(conn)
            if conn.password:
                mask_secret(conn.password)
            self._settings = ConnectionSettings.from_parts(
                conn_id=self.midjourney_conn_id,
                host=conn.host,
                schema=conn.schema,
                port=conn.port,
                password=conn.password,
                extra=extra,
            )
        return self._settings

    async def config(self) -> _SessionConfig:
        """The http provider's session configuration, built from this connection's settings."""
        settings = await self.load_settings()
        return _SessionConfig(
            base_url=settings.base_url,
            headers=settings.headers(),
            auth=None,
            extra_options={"timeout": aiohttp.ClientTimeout(total=settings.timeout)},
        )

    @asynccontextmanager
    async def api(self) -> AsyncIterator[MidjourneyAsyncApi]:
        """Open one HTTP session for many calls: ``async with hook.api() as api: await api.find_task(id)``."""
        settings = await self.load_settings()
        config = await self.config()
        async with aiohttp.ClientSession() as client:
            yield MidjourneyAsyncApi(self, client, config, settings)


class MidjourneyAsyncApi:
    """Calls on one open async session; made by :meth:`MidjourneyAsyncHook.api`."""

    def __init__(
        self,
        hook: MidjourneyAsyncHook,
        client: aiohttp.ClientSession,
        config: _SessionConfig,
        settings: ConnectionSettings,
    ) -> None:
        self._hook = hook
        self.settings = settings
        #: Ids per ``list-by-condition`` request: the hook's argument, else the connection's extra.
        self.list_chunk_size: int = hook.list_chunk_size or settings.list_chunk_size
        # The http provider's AsyncHttpSession binds one HTTP method: one per method, same client.
        self._sessions = {
            method: AsyncHttpSession(hook=hook, request=getattr(client, method.lower()), config=config, method=method)
            for method in ("GET", "POST")
        }

    async def _send_once(self, method: str, path: str, body: Any, what: str) -> ApiResponse:
        endpoint = self.settings.endpoint(path)
        http = self._sessions[method]
        try:
            response = await http.run(endpoint=endpoint, json=body, extra_options={"check_response": False})
            try:
                payload = await response.read()
            finally:
                response.release()
        except aiohttp.ClientConnectorError as err:
            raise MidjourneyConnectionError(
                f"Could not connect for {what}: {type(err).__name__}", safe_to_resend=True
            ) from None
        except (aiohttp.ClientError, asyncio.TimeoutError) as err:
            raise MidjourneyConnectionError(f"Network error on {what}: {type(err).__name__}") from None
        body = _without_key(payload, self.settings.api_key)
        return ApiResponse(status=response.status, body=body, headers=dict(response.headers), what=what)

    async def _call(self, method: str, path: str, body: Any, what: str, parse: Any) -> Any:
        retrying = tenacity.AsyncRetrying(
            **self._hook.retry_policy.tenacity_kwargs(resend_safe_only=False, logger=self._hook.log, what=what)
        )
        async for attempt in retrying:
            with attempt:
                return parse(await self._send_once(method, path, body, what))
        raise AssertionError("unreachable")  # pragma: no cover

    async def find_task(self, mj_task_id: str) -> MidjourneyTask | None:
        """Fetch one task, or ``None`` when the server does not know the id (yet)."""
        return await self._call("GET", fetch_path(mj_task_id), None, f"fetch of task {mj_task_id}", parse_fetch)

    async def list_tasks(self, ids: list[str]) -> list[MidjourneyTask]:
        """
        One ``list-by-condition`` request for exactly these ids (the caller chunks); transient errors retried.

        Unknown ids are left out of the answer, as the servers do. A server without the route raises
        :class:`MidjourneyNotFoundError` (404) or :class:`MidjourneyRejectedError` (405 and other 4xx).

        :param ids: task ids, already checked.
        """
        what = f"list of {len(ids)} task(s)"
        return await self._call("POST", LIST_PATH, {"ids": list(ids)}, what, parse_task_list)

    async def cancel_task(self, mj_task_id: str) -> bool:
        """Ask the server to cancel a task; best effort, returns whether it was accepted."""
        try:
            accepted, _ = await self._call(
                "POST", cancel_path(mj_task_id), {}, f"cancel of task {mj_task_id}", parse_cancel
            )
        except MidjourneyNotFoundError:
            return False
        return bool(accepted)
