"""The async hook for triggers: fetch, list and cancel on one aiohttp session (no submissions)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import tenacity
from airflow.providers.common.compat.sdk import AirflowNotFoundException, mask_secret
from airflow.providers.http.hooks.http import AsyncHttpSession, HttpAsyncHook
from airflow.providers.http.hooks.http import SessionConfig as _SessionConfig

from airflow_provider_mjvideo.connection import ConnectionSettings, undefined_connection
from airflow_provider_mjvideo.connection_form import ConnectionFormMixin
from airflow_provider_mjvideo.exceptions import MidjourneyConfigurationError, MidjourneyNotFoundError
from airflow_provider_mjvideo.models import MidjourneyTask
from airflow_provider_mjvideo.responses import ApiResponse, parse_cancel, parse_fetch, parse_task_list
from airflow_provider_mjvideo.retrying import RetryPolicy
from airflow_provider_mjvideo.routes import LIST_PATH, cancel_path, fetch_path
from airflow_provider_mjvideo.transport import aiohttp_error, without_key


class MidjourneyAsyncHook(ConnectionFormMixin, HttpAsyncHook):
    """
    Async counterpart of :class:`~airflow_provider_mjvideo.hooks.midjourney.MidjourneyHook` for triggers.

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
        midjourney_conn_id: str = ConnectionFormMixin.default_conn_name,
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
            from airflow.providers.common.compat.connection import get_async_connection

            try:
                conn = await get_async_connection(self.midjourney_conn_id, hook=self)
            except AirflowNotFoundException:
                raise MidjourneyConfigurationError(undefined_connection(self.midjourney_conn_id)) from None
            if conn.password:
                mask_secret(conn.password)
            self._settings = ConnectionSettings.from_connection(self.midjourney_conn_id, conn)
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
        except (aiohttp.ClientError, asyncio.TimeoutError) as err:
            raise aiohttp_error(err, what) from None
        body = without_key(payload, self.settings.api_key)
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
