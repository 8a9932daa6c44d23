"""What a ``midjourney`` Airflow connection means: base URL, API key, auth style, speed mode, timeout, polling."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from airflow_provider_mjvideo.exceptions import MidjourneyConfigurationError

AUTH_STYLES: Final = ("bearer", "mj-api-secret", "raw")
SPEED_MODES: Final = ("fast", "relax", "turbo")
DEFAULT_TIMEOUT: Final = 30.0
#: Ids per ``list-by-condition`` request unless the connection's ``list_chunk_size`` extra says otherwise.
DEFAULT_LIST_CHUNK_SIZE: Final = 100
#: Extra keys this provider reads itself; HttpHook must not turn them into request headers.
#: The connection id operators, sensors and hooks use unless told otherwise.
DEFAULT_CONN_ID: Final = "midjourney_default"
OWN_EXTRA_KEYS: Final = frozenset({"auth_style", "mode", "timeout", "batch_polling", "list_chunk_size"})

_TRUE_WORDS: Final = frozenset({"true", "yes", "on", "1"})
_FALSE_WORDS: Final = frozenset({"false", "no", "off", "0"})


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
    :param batch_polling: waiting triggers of this connection share one poller that asks for many tasks
        per ``list-by-condition`` request (``False``: one fetch per task per poll interval).
    :param list_chunk_size: the most ids in one ``list-by-condition`` request of the shared poller.
    """

    conn_id: str
    base_url: str
    api_key: str = field(repr=False)
    auth_style: str = "bearer"
    mode: str | None = None
    timeout: float = DEFAULT_TIMEOUT
    batch_polling: bool = True
    list_chunk_size: int = DEFAULT_LIST_CHUNK_SIZE

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

        :raises MidjourneyConfigurationError: no host, no key, unknown auth style or mode, bad timeout,
            bad ``batch_polling`` or ``list_chunk_size``.
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
            batch_polling=_flag(conn_id, "batch_polling", extra.get("batch_polling"), default=True),
            list_chunk_size=_chunk_size(conn_id, extra.get("list_chunk_size")),
        )


def _flag(conn_id: str, name: str, raw: Any, *, default: bool) -> bool:
    """Read a boolean extra given as JSON ``true``/``false`` or as a word (``"false"``, ``"no"``, ``"0"``…)."""
    if raw is None or raw == "":
        return default
    if isinstance(raw, bool):
        return raw
    word = str(raw).strip().lower()
    if word in _TRUE_WORDS:
        return True
    if word in _FALSE_WORDS:
        return False
    raise MidjourneyConfigurationError(f"Connection {conn_id!r}: {name} must be true or false, got {raw!r}")


def _chunk_size(conn_id: str, raw: Any) -> int:
    """Read ``list_chunk_size``: a positive integer (``50`` or ``"50"``), default :data:`DEFAULT_LIST_CHUNK_SIZE`."""
    if raw is None or raw == "":
        return DEFAULT_LIST_CHUNK_SIZE
    size: int | None = None
    if isinstance(raw, int) and not isinstance(raw, bool):
        size = raw
    elif isinstance(raw, float) and raw.is_integer():
        size = int(raw)
    elif isinstance(raw, str) and raw.strip().isdigit():
        size = int(raw.strip())
    if size is None or size < 1:
        raise MidjourneyConfigurationError(
            f"Connection {conn_id!r}: list_chunk_size must be a positive integer, got {raw!r}"
        )
    return size
