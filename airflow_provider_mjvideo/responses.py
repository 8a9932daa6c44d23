"""
Turn the servers' answers into values or typed errors; shared by the sync and async hooks.

Servers disagree on error shapes (see the API reference): ``{"code", "description"}``, trueai's
``{"success": false, "code": -1, "message"}`` with HTTP 200, new-api's ``{"error": {"message"}}``,
plain text, HTML, empty bodies. Everything here works on status, headers and bytes, so no transport
detail leaks in and nothing here can see the API key.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from typing import Any, Final

import pendulum

from airflow_provider_mjvideo.exceptions import (
    MidjourneyApiError,
    MidjourneyAuthError,
    MidjourneyBannedPromptError,
    MidjourneyError,
    MidjourneyNotFoundError,
    MidjourneyQueueFullError,
    MidjourneyRateLimitError,
    MidjourneyRejectedError,
    MidjourneyResponseError,
    MidjourneyServerError,
    shorten,
)
from airflow_provider_mjvideo.models import MidjourneyTask

#: Submit codes meaning "accepted" (with a task id in ``result``).
ACCEPTED_CODES: Final = frozenset({1, 21, 22})
_NOT_FOUND_MARKERS: Final = ("task_no_found", "task_not_found", "task not found", "not exist")


@dataclass(frozen=True)
class ApiResponse:
    """
    One HTTP answer, reduced to what interpretation needs.

    :param status: the HTTP status code.
    :param body: the raw body bytes.
    :param headers: response headers (case-insensitive lookups via :meth:`header`).
    :param what: a short description of the request, for messages (``"fetch of task 123"``).
    """

    status: int
    body: bytes
    headers: Mapping[str, str] = field(default_factory=dict)
    what: str = "request"

    def header(self, name: str) -> str | None:
        """Return a header's value, whatever its case."""
        wanted = name.lower()
        for key, value in self.headers.items():
            if key.lower() == wanted:
                return value
        return None

    @property
    def text(self) -> str:
        """The body as text (undecodable bytes replaced)."""
        return self.body.decode("utf-8", errors="replace")


_NO_JSON: Final = object()


def _json_or_marker(response: ApiResponse) -> Any:
    if not response.body.strip():
        return _NO_JSON
    try:
        return json.loads(response.body)
    except ValueError:
        return _NO_JSON


def retry_after_seconds(value: str | None) -> float | None:
    """Parse a ``Retry-After`` header (seconds or an HTTP date) into seconds from now, or ``None``."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, (pendulum.instance(when) - pendulum.now("UTC")).total_seconds())


def _code_and_description(payload: Any, response: ApiResponse) -> tuple[Any, str]:
    """Pull the server's code and words out of any of the known error shapes."""
    if isinstance(payload, Mapping):
        code = payload.get("code")
        if isinstance(code, str) and code.strip().lstrip("-").isdigit():
            code = int(code)  # some gateways send the code as a string
        error = payload.get("error")
        words = (
            payload.get("description")
            or payload.get("message")
            or payload.get("msg")
            or (error.get("message") if isinstance(error, Mapping) else error)
        )
        return code, str(words) if words else ""
    if payload is _NO_JSON:
        return None, response.text
    return None, json.dumps(payload)[:500]


def _error_for_status(response: ApiResponse, code: Any, description: str) -> MidjourneyError:
    status = response.status
    what = response.what
    common: dict[str, Any] = {"http_status": status, "code": code, "description": description or None}
    lowered = description.lower()
    if status in (401, 403):
        return MidjourneyAuthError(
            f"Authentication failed for {what}: check the API key and the connection's auth_style "
            "(bearer, mj-api-secret or raw)",
            **common,
        )
    if status == 429:
        return MidjourneyRateLimitError(
            f"Rate limited on {what}",
            safe_to_resend=True,
            retry_after=retry_after_seconds(response.header("Retry-After")),
            **common,
        )
    if status == 404 or code == 3 or any(marker in lowered for marker in _NOT_FOUND_MARKERS):
        return MidjourneyNotFoundError(f"Not found: {what}", **common)
    if status == 408:
        return MidjourneyServerError(f"The server timed out on {what}", **common)
    if 400 <= status < 500:
        if code == 24:
            return _banned(response, None, common)
        return MidjourneyRejectedError(f"The server rejected {what}", **common)
    # 5xx. Only 503 says the server refused to handle the request at all.
    return MidjourneyServerError(
        f"Server error on {what}",
        safe_to_resend=status == 503,
        retry_after=retry_after_seconds(response.header("Retry-After")),
        **common,
    )


def _banned(response: ApiResponse, payload: Any, common: dict[str, Any]) -> MidjourneyBannedPromptError:
    word = None
    if isinstance(payload, Mapping) and isinstance(payload.get("properties"), Mapping):
        word = payload["properties"].get("bannedWord")
    return MidjourneyBannedPromptError(f"Banned prompt in {response.what}", banned_word=word, **common)


def check_http(response: ApiResponse) -> Any:
    """
    Raise the typed error for a non-2xx answer or a trueai ``{"success": false}`` envelope.

    :returns: the decoded JSON body, or ``None`` when the 2xx body is empty or not JSON.
    """
    payload = _json_or_marker(response)
    if not 200 <= response.status < 300:
        code, description = _code_and_description(payload, response)
        raise _error_for_status(response, code, description)
    if isinstance(payload, Mapping) and payload.get("success") is False:
        code, description = _code_and_description(payload, response)
        common: dict[str, Any] = {"http_status": response.status, "code": code, "description": description}
        if "concurren" in description.lower() or "queue" in description.lower():
            raise MidjourneyQueueFullError(f"The server is busy for {response.what}", safe_to_resend=True, **common)
        raise MidjourneyRejectedError(f"The server refused {response.what}", **common)
    return None if payload is _NO_JSON else payload


def _require_json(response: ApiResponse, payload: Any) -> Any:
    if payload is None:
        raise MidjourneyResponseError(
            f"Unreadable answer to {response.what}: expected JSON, got {shorten(response.text, 200)!r}",
            http_status=response.status,
        )
    return payload


def parse_submit(response: ApiResponse) -> str:
    """
    Return the task id of an accepted submission, or raise the typed error for the server's code.

    Accepted means code 1, 21 or 22 and a non-empty ``result``.
    """
    payload = _require_json(response, check_http(response))
    if not isinstance(payload, Mapping):
        raise MidjourneyResponseError(
            f"Unexpected answer to {response.what}: {shorten(json.dumps(payload), 200)}",
            http_status=response.status,
        )
    code, description = _code_and_description(payload, response)
    common: dict[str, Any] = {
        "http_status": response.status,
        "code": code,
        "description": description or None,
    }
    result = payload.get("result")
    if code in ACCEPTED_CODES:
        if result is None or isinstance(result, (bool, float)) or not str(result).strip():
            raise MidjourneyResponseError(f"{response.what} was accepted without a task id", **common)
        return str(result).strip()
    lowered = description.lower()
    if code == 23 or (code == 9 and "queue" in lowered):
        raise MidjourneyQueueFullError(f"Queue full, nothing submitted: {response.what}", safe_to_resend=True, **common)
    if code == 30:
        raise MidjourneyRateLimitError(f"Rate limited on {response.what}", safe_to_resend=True, **common)
    if code == 24:
        raise _banned(response, payload, common)
    if code == 3:
        raise MidjourneyNotFoundError(f"Not found: {response.what} (parent task or account)", **common)
    if code == 4:
        raise MidjourneyRejectedError(f"The server rejected {response.what}", **common)
    if code == 9:
        raise MidjourneyServerError(f"System error on {response.what}", **common)
    raise MidjourneyApiError(f"The server did not accept {response.what}", **common)


def parse_fetch(response: ApiResponse) -> MidjourneyTask | None:
    """
    Return the task of a ``/fetch`` answer, or ``None`` when the server does not know the id.

    Unknown ids come back as HTTP 204, an empty 200, ``null``, or new-api's HTTP 400 ``task_no_found``.
    """
    if response.status == 204:
        return None
    try:
        payload = check_http(response)
    except MidjourneyNotFoundError:
        return None
    if payload is None:
        if response.body.strip() and response.body.strip() != b"null":
            raise MidjourneyResponseError(
                f"Unreadable answer to {response.what}: {shorten(response.text, 200)!r}",
                http_status=response.status,
            )
        return None
    return _task_from(response, payload)


def _task_from(response: ApiResponse, item: Any) -> MidjourneyTask:
    """Parse one task object; a malformed one is an error naming the request and the HTTP status."""
    try:
        return MidjourneyTask.from_api(item)
    except MidjourneyResponseError as err:
        raise MidjourneyResponseError(
            f"Unexpected answer to {response.what}: {err.message}", http_status=response.status
        ) from None


def parse_task_list(response: ApiResponse) -> list[MidjourneyTask]:
    """Return the tasks of a ``list-by-condition`` answer (a JSON array; some gateways wrap it)."""
    payload = _require_json(response, check_http(response))
    if isinstance(payload, Mapping):
        for key in ("result", "data", "tasks", "list"):
            if isinstance(payload.get(key), list):
                payload = payload[key]
                break
    if not isinstance(payload, list):
        raise MidjourneyResponseError(
            f"Expected a JSON array from {response.what}, got {shorten(json.dumps(payload), 200)}",
            http_status=response.status,
        )
    return [_task_from(response, item) for item in payload if item is not None]


def parse_cancel(response: ApiResponse) -> tuple[bool, str]:
    """Return whether a cancel was accepted, and the server's words."""
    payload = check_http(response)
    code, description = _code_and_description(payload, response) if payload is not None else (None, "")
    accepted = code in (None, 1, 21, 22) if isinstance(payload, Mapping) else True
    return accepted, description
