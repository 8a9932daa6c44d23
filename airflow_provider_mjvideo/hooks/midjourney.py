"""Hooks for midjourney-proxy compatible video APIs, built on the http provider's HttpHook/HttpAsyncHook."""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from functools import cached_property, partial
from typing import Any

import requests
import tenacity
from airflow.providers.common.compat.sdk import AirflowNotFoundException, Connection, mask_secret
from airflow.providers.common.compat.version_compat import AIRFLOW_V_3_2_PLUS
from airflow.providers.http.hooks.http import HttpHook

from airflow_provider_mjvideo.connection import (
    DEFAULT_LIST_CHUNK_SIZE,
    ConnectionSettings,
    passthrough_extra,
    read_extra,
    undefined_connection,
)
from airflow_provider_mjvideo.connection_form import ConnectionFormMixin
from airflow_provider_mjvideo.exceptions import (
    MidjourneyAuthError,
    MidjourneyConfigurationError,
    MidjourneyConnectionError,
    MidjourneyError,
    MidjourneyNotFoundError,
    MidjourneySubmitOutcomeUnknownError,
    MidjourneyTransientError,
)
from airflow_provider_mjvideo.hooks.midjourney_async import MidjourneyAsyncApi, MidjourneyAsyncHook
from airflow_provider_mjvideo.hooks.submit import MidjourneySubmitMixin
from airflow_provider_mjvideo.models import MidjourneyTask
from airflow_provider_mjvideo.responses import ApiResponse, parse_cancel, parse_fetch, parse_submit, parse_task_list
from airflow_provider_mjvideo.retrying import RetryPolicy
from airflow_provider_mjvideo.routes import LIST_PATH, cancel_path, fetch_path
from airflow_provider_mjvideo.transport import ApiKeyAuth, chunked, dedupe_ids, requests_error, without_key
from airflow_provider_mjvideo.validation import check_expect, check_positive_int, check_positive_number, check_task_id
from airflow_provider_mjvideo.waiting import WaitTracker, result_or_raise

__all__ = ["MidjourneyAsyncApi", "MidjourneyAsyncHook", "MidjourneyHook", "cancel_path", "fetch_path"]


class MidjourneyHook(MidjourneySubmitMixin, ConnectionFormMixin, HttpHook):
    """
    Talk to a midjourney-proxy compatible API (trueai, novicezk, new-api gateways) over a ``midjourney`` connection.

    The connection's host is the base URL (scheme, host, optional path prefix), its password the API
    key; extras ``auth_style`` (``bearer``/``mj-api-secret``/``raw``), ``mode``
    (``fast``/``relax``/``turbo``) and ``timeout`` (seconds per request). Other extras go to HttpHook as
    they would for any HTTP connection (``verify``, ``proxies``, ``cert``, extra headers).

    Paid submissions: :meth:`submit_video`, :meth:`submit_imagine`, :meth:`submit_action`, :meth:`upscale`,
    :meth:`submit_modal` (:mod:`airflow_provider_mjvideo.hooks.submit`). Reads (fetch, list, cancel) are retried
    on connection errors, timeouts, HTTP 429 (honouring ``Retry-After``) and 5xx. A submission is resent only
    when the server certainly did not take it (connection refused, 429, 503, queue full); after an ambiguous
    failure it raises :class:`MidjourneySubmitOutcomeUnknownError` instead of risking a second paid job.

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
        get_connection_form_widgets = ConnectionFormMixin.__dict__["get_connection_form_widgets"]
        get_ui_field_behaviour = ConnectionFormMixin.__dict__["get_ui_field_behaviour"]

    def __init__(
        self,
        midjourney_conn_id: str = ConnectionFormMixin.default_conn_name,
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
        self.list_chunk_size = check_positive_int("list_chunk_size", list_chunk_size)
        self._session: requests.Session | None = None

    # ---------------------------------------------------------------- connection and session

    @cached_property
    def settings(self) -> ConnectionSettings:
        """The connection's settings, read once; the key is registered with Airflow's secret masker."""
        try:
            # HttpHook's own method, not ours below: the settings need the connection as it is stored.
            conn = HttpHook.get_connection(self.midjourney_conn_id)
        except AirflowNotFoundException:
            raise MidjourneyConfigurationError(undefined_connection(self.midjourney_conn_id)) from None
        if conn.password:
            mask_secret(conn.password)
        return ConnectionSettings.from_connection(self.midjourney_conn_id, conn)

    @classmethod
    def get_connection(cls, conn_id: str) -> Connection:
        """
        The connection as HttpHook's session code should read it: host = the API's base URL, no key, and only
        the extras that are HTTP options (``verify``, ``proxies``, headers…).

        HttpHook turns every extra it does not know into a request header, and its reading of ``extra_dejson``
        registers every value with the secret masker; this provider's own extras (``auth_style``, ``mode``…) are
        neither headers nor secrets. The key is added to each request by :class:`ApiKeyAuth`.
        The connection as stored is read with ``HttpHook.get_connection`` (see :attr:`settings`).

        :param conn_id: the connection id.
        """
        stored = HttpHook.get_connection(conn_id)
        settings = ConnectionSettings.from_connection(conn_id, stored)
        options = passthrough_extra(read_extra(conn_id, stored.extra))
        return Connection(
            conn_id=conn_id,
            conn_type=stored.conn_type or cls.conn_type,
            host=settings.base_url,
            extra=json.dumps(options) if options else None,
        )

    def get_conn(
        self, headers: dict[Any, Any] | None = None, extra_options: dict[str, Any] | None = None
    ) -> requests.Session:
        """Return the requests session for this API (made once, reused for keep-alive)."""
        settings = self.settings  # resolve the connection first, for its clear errors
        if self._session is None or headers or extra_options:
            # HttpHook's _extract_auth calls a zero-argument auth_type when the connection has no login.
            self.auth_type = partial(ApiKeyAuth, settings.auth_style, settings.api_key)
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
        except requests.exceptions.RequestException as err:
            raise requests_error(err, what) from None
        body = without_key(response.content, self.settings.api_key)
        return ApiResponse(status=response.status_code, body=body, headers=response.headers, what=what)

    def _call(self, method: str, path: str, body: Any, what: str, parse: Any, *, resend_safe_only: bool = False) -> Any:
        """Send one API request with the retry policy and return ``parse(response)``."""
        retrying = tenacity.Retrying(
            **self.retry_policy.tenacity_kwargs(resend_safe_only=resend_safe_only, logger=self.log, what=what)
        )
        return retrying(lambda: parse(self._send_once(method, path, body, what)))

    def _submit(self, path: str, body: dict[str, Any], what: str) -> str:
        """
        Send one paid submission; return the accepted task id.

        Resent only after failures where the server certainly did nothing; any other failure becomes
        :class:`MidjourneySubmitOutcomeUnknownError`, so that no second job is paid for.
        """
        try:
            task_id: str = self._call("POST", path, body, what, parse_submit, resend_safe_only=True)
        except MidjourneyTransientError as err:
            if err.safe_to_resend:
                raise
            raise MidjourneySubmitOutcomeUnknownError(
                f"The {what} may or may not have been accepted ({err.message}); it was not resent, "
                "so that no second job is paid for. Check the server's task list before retrying",
                http_status=err.http_status,
                code=err.code,
                description=err.description,
            ) from err
        self.log.info("Midjourney accepted the %s: task id %s", what, task_id)
        return task_id

    # ---------------------------------------------------------------- API

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
        wanted = dedupe_ids(ids)
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
        expect: str = "auto",
    ) -> MidjourneyTask:
        """
        Poll until the task finishes; return it on SUCCESS (with its video URLs, or its picture).

        :param mj_task_id: the task id.
        :param poll_interval: seconds between polls.
        :param timeout: seconds to wait at most (``None``: no limit).
        :param started_at: epoch seconds when the task was submitted (for the unknown-id grace).
        :param expect: what success must carry: ``"video"``, ``"image"``, or ``"auto"`` (the task's kind).
        :raises MidjourneyTaskFailedError: FAILURE, CANCEL or MODAL.
        :raises MidjourneyWaitTimeoutError: the timeout passed first.
        """
        mj_task_id = check_task_id("mj_task_id", mj_task_id)
        interval = check_positive_number("poll_interval", poll_interval)
        limit = check_positive_number("timeout", timeout, allow_none=True)
        now = time.time()
        tracker = WaitTracker(
            mj_task_id,
            started_at=started_at or now,
            deadline=now + limit if limit else None,
            expect=check_expect("expect", expect),
        )
        while True:
            decision = tracker.poll(lambda: self.find_task(mj_task_id), self.log)
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
