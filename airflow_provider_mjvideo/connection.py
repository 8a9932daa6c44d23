"""What a ``midjourney`` Airflow connection means: base URL, API key, auth header style, speed mode, timeout."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from airflow_provider_mjvideo.exceptions import MidjourneyConfigurationError

AUTH_STYLES: Final = ("bearer", "mj-api-secret", "raw")
SPEED_MODES: Final = ("fast", "relax", "turbo")
DEFAULT_TIMEOUT: Final = 30.0
#: Extra keys this provider reads itself; HttpHook must not turn them into request headers.
OWN_EXTRA_KEYS: Final = frozenset({"auth_style", "mode", "timeout"})


def auth_headers(auth_style: str, api_key: str) -> dict[str, str]:
    """
    Return the header that carries the API key in the given style.

    :param auth_style: ``bearer`` (``Authorization: Bearer <key>``), ``mj-api-secret``
        (``mj-api-secret: <key>``) or ``raw`` (``Authorization: <key>``, as trueai expects).
    :param api_key: the key.
    """
    if auth_style == "bearer":
        return {"Authorization": f"Bearer {api_key}"}
    if auth_style == "mj-api-secret":
        return {"mj-api-secret": api_key}
    if auth_style == "raw":
        return {"Authorization": api_key}
    raise MidjourneyConfigurationError(f"Unknown auth_style {auth_style!r}; use one of {', '.join(AUTH_STYLES)}")


@dataclass(frozen=True)
class ConnectionSettings:
    """
    The parts of a ``midjourney`` connection that shape requests.

    :param conn_id: the Airflow connection id (for messages).
    :param base_url: scheme, host, port and optional path prefix, without a trailing slash.
    :param api_key: the key (never printed: excluded from ``repr``).
    :param auth_style: one of :data:`AUTH_STYLES`.
    :param mode: ``fast``/``relax``/``turbo`` or ``None``.
    :param timeout: seconds for one HTTP request.
    """

    conn_id: str
    base_url: str
    api_key: str = field(repr=False)
    auth_style: str = "bearer"
    mode: str | None = None
    timeout: float = DEFAULT_TIMEOUT

    @property
    def route_prefix(self) -> str:
        """``/mj-fast`` etc. for a forced speed mode, else ``""``."""
        return f"/mj-{self.mode}" if self.mode else ""

    def endpoint(self, path: str) -> str:
        """Return the endpoint for an API path such as ``/mj/submit/video``, with the speed-mode prefix."""
        return f"{self.route_prefix}{path}"

    def url(self, path: str) -> str:
        """Return the absolute URL of an API path."""
        return f"{self.base_url}{self.endpoint(path)}"

    def headers(self) -> dict[str, str]:
        """All headers of an API request, the key included."""
        return {
            "Content-Type": "application/json",
            "Accept": "application/json",
            **auth_headers(self.auth_style, self.api_key),
        }

    @classmethod
    def from_parts(
        cls,
        *,
        conn_id: str,
        host: str | None,
        schema: str | None,
        port: int | None,
        password: str | None,
        extra: Mapping[str, Any],
    ) -> ConnectionSettings:
        """
        Build settings from a connection's fields, with clear errors for each misconfiguration.

        :raises MidjourneyConfigurationError: no host, no key, unknown auth style or mode, bad timeout.
        """
        host = (host or "").strip()
        if not host:
            raise MidjourneyConfigurationError(
                f"Connection {conn_id!r} has no host: set it to the API's base URL, e.g. https://api.example.com"
            )
        if "://" in host:
            base_url = host
        else:
            base_url = f"{(schema or 'https').strip() or 'https'}://{host}"
            if port:
                base_url = f"{base_url}:{port}"
        if not base_url.startswith(("http://", "https://")):
            raise MidjourneyConfigurationError(
                f"Connection {conn_id!r} host must start with http:// or https://, got {base_url.split('://')[0]!r}"
            )
        if not password:
            raise MidjourneyConfigurationError(f"Connection {conn_id!r} has no API key (the password field)")

        auth_style = str(extra.get("auth_style") or "bearer").strip().lower()
        if auth_style not in AUTH_STYLES:
            raise MidjourneyConfigurationError(
                f"Connection {conn_id!r}: unknown auth_style {auth_style!r}; use one of {', '.join(AUTH_STYLES)}"
            )
        mode = str(extra.get("mode") or "").strip().lower() or None
        if mode is not None and mode not in SPEED_MODES:
            raise MidjourneyConfigurationError(
                f"Connection {conn_id!r}: unknown mode {mode!r}; use one of {', '.join(SPEED_MODES)} or leave empty"
            )
        raw_timeout = extra.get("timeout")
        try:
            timeout = float(raw_timeout) if raw_timeout not in (None, "") else DEFAULT_TIMEOUT
        except (TypeError, ValueError):
            raise MidjourneyConfigurationError(
                f"Connection {conn_id!r}: timeout must be a number of seconds, got {raw_timeout!r}"
            ) from None
        if timeout <= 0:
            raise MidjourneyConfigurationError(f"Connection {conn_id!r}: timeout must be positive, got {timeout}")
        return cls(
            conn_id=conn_id,
            base_url=base_url.rstrip("/"),
            api_key=password,
            auth_style=auth_style,
            mode=mode,
            timeout=timeout,
        )
