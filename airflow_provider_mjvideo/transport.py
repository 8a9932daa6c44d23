"""
HTTP plumbing shared by the sync hook, the async hook and the media downloader.

* :class:`ApiKeyAuth` adds the key header at send time, so it never sits in a session's headers.
* :func:`without_key` scrubs a server's echo of the key from a body before it reaches errors or logs.
* :func:`requests_error` and :func:`aiohttp_error` are the one mapping of each transport's failures to
  the provider's transient errors, with the rule that decides whether a *submission* may be resent: only
  when the request certainly never reached the server (the connection was refused or never opened).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any, TypeVar

from airflow_provider_mjvideo.connection import auth_headers
from airflow_provider_mjvideo.exceptions import MidjourneyConnectionError, MidjourneyTransientError
from airflow_provider_mjvideo.validation import check_task_id

if TYPE_CHECKING:
    import requests

_Error = TypeVar("_Error", bound=MidjourneyTransientError)


class ApiKeyAuth:
    """
    ``requests`` auth that adds the key header at send time (it never sits in ``session.headers``).

    :param auth_style: the connection's ``auth_style``.
    :param api_key: the key; hidden from ``repr``.
    """

    def __init__(self, auth_style: str, api_key: str) -> None:
        self._headers = auth_headers(auth_style, api_key)

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers.update(self._headers)
        return request

    def __repr__(self) -> str:
        return "ApiKeyAuth(<hidden>)"


def without_key(body: bytes, api_key: str) -> bytes:
    """The body with every copy of the API key masked: a server echoing it must not put it into errors or logs."""
    key = api_key.encode()
    return body.replace(key, b"***") if key and key in body else body


def requests_error(
    err: BaseException,
    what: str,
    error_class: type[_Error] = MidjourneyConnectionError,  # type: ignore[assignment]
) -> _Error:
    """
    The provider's error for a ``requests`` failure (raise it ``from None``: the original may hold the URL).

    :param err: what ``requests`` raised.
    :param what: the request, for the message (``"video submission"``, ``"clip 2 of task 123"``).
    :param error_class: the transient error to build (:class:`MidjourneyConnectionError` or a download error).
    """
    import requests

    if isinstance(err, requests.exceptions.ConnectTimeout):
        return error_class(f"Could not connect for {what}: {type(err).__name__}", safe_to_resend=True)
    if isinstance(err, requests.exceptions.ConnectionError):
        refused = "refused" in str(err).lower() or "NewConnectionError" in repr(err)
        return error_class(f"Network error on {what}: {type(err).__name__}", safe_to_resend=refused)
    if isinstance(err, requests.exceptions.Timeout):
        return error_class(f"Timed out on {what}: {type(err).__name__}")
    return error_class(f"Request failed on {what}: {type(err).__name__}")


def aiohttp_error(err: BaseException, what: str) -> MidjourneyConnectionError:
    """
    The provider's error for an ``aiohttp`` failure or timeout (raise it ``from None``).

    :param err: what ``aiohttp`` raised (a ``ClientError``) or ``asyncio.TimeoutError``.
    :param what: the request, for the message.
    """
    import aiohttp

    if isinstance(err, aiohttp.ClientConnectorError):
        return MidjourneyConnectionError(f"Could not connect for {what}: {type(err).__name__}", safe_to_resend=True)
    if isinstance(err, asyncio.TimeoutError):
        return MidjourneyConnectionError(f"Timed out on {what}: {type(err).__name__}")
    return MidjourneyConnectionError(f"Network error on {what}: {type(err).__name__}")


def chunked(items: list[str], size: int) -> Iterator[list[str]]:
    """Yield consecutive slices of ``items`` of at most ``size`` elements."""
    for start in range(0, len(items), size):
        yield items[start : start + size]


def dedupe_ids(ids: Iterable[Any]) -> list[str]:
    """Task ids checked and in first-seen order, each once (``list-by-condition`` needs each id once)."""
    seen: dict[str, None] = {}
    for raw in ids:
        seen.setdefault(check_task_id("ids", raw), None)
    return list(seen)
