"""
What a ``midjourney`` Airflow connection means: base URL, API key, auth style, speed mode, timeout, polling.

The extras are declared once, in :data:`~airflow_provider_mjvideo.connection_fields.EXTRA_FIELDS`; this
module reads them (:func:`read_field`, :meth:`ConnectionSettings.from_parts`) without handing their values
to Airflow's secret masker (:func:`read_extra`), and builds the key's header (:func:`auth_headers`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from airflow_provider_mjvideo.connection_fields import (
    AUTH_STYLES,
    DEFAULT_CONN_ID,
    DEFAULT_LIST_CHUNK_SIZE,
    DEFAULT_TIMEOUT,
    EXTRA_FIELDS,
    OWN_EXTRA_KEYS,
    SPEED_MODES,
    ExtraField,
    conn_fields,
    ui_field_behaviour,
)
from airflow_provider_mjvideo.exceptions import MidjourneyConfigurationError, MidjourneyValidationError
from airflow_provider_mjvideo.validation import check_bool, check_positive_int, check_positive_number

__all__ = [
    "AUTH_STYLES",
    "DEFAULT_CONN_ID",
    "DEFAULT_LIST_CHUNK_SIZE",
    "DEFAULT_TIMEOUT",
    "EXTRA_FIELDS",
    "OWN_EXTRA_KEYS",
    "SPEED_MODES",
    "ConnectionSettings",
    "ExtraField",
    "auth_headers",
    "conn_fields",
    "passthrough_extra",
    "read_extra",
    "read_field",
    "ui_field_behaviour",
    "undefined_connection",
]


def read_field(extra_field: ExtraField, conn_id: str, extra: Mapping[str, Any]) -> Any:
    """
    One extra's value in a connection's extra: parsed, checked, or its default when missing or empty.

    :param extra_field: the field of :data:`EXTRA_FIELDS`.
    :param conn_id: the connection id, for messages.
    :param extra: the connection's extra.
    :raises MidjourneyConfigurationError: naming the connection, the field and the allowed values.
    """
    raw = extra.get(extra_field.name)
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        return extra_field.default
    if extra_field.kind == "choice":
        value = str(raw).strip().lower()
        if value not in extra_field.choices:
            allowed = ", ".join(extra_field.choices) + (" or leave empty" if extra_field.default is None else "")
            raise MidjourneyConfigurationError(
                f"Connection {conn_id!r}: unknown {extra_field.name} {value!r}; use one of {allowed}"
            )
        return value
    try:
        if extra_field.kind == "number":
            return check_positive_number(extra_field.name, raw)
        if extra_field.kind == "integer":
            return check_positive_int(extra_field.name, raw)
        return check_bool(extra_field.name, raw)
    except MidjourneyValidationError as err:
        raise MidjourneyConfigurationError(f"Connection {conn_id!r}: {extra_field.name} {err.problem}") from None


def undefined_connection(conn_id: str) -> str:
    """The message for a connection id that Airflow does not know, saying how to define it."""
    return (
        f"Connection {conn_id!r} is not defined: add it in the Airflow UI (type Midjourney) "
        f"or set AIRFLOW_CONN_{conn_id.upper()}"
    )


def read_extra(conn_id: str, extra: str | Mapping[str, Any] | None) -> dict[str, Any]:
    """
    A connection's extra as a dict, read without registering its values with Airflow's secret masker.

    ``Connection.extra_dejson`` hands every extra value to the masker, which logs "Skipping masking for a
    secret as it's too short" for values such as ``auth_style: raw`` or ``mode: fast``; none of this
    provider's extras is a secret (the key is the password field, masked on its own).

    :param conn_id: the connection id, for the message.
    :param extra: the connection's ``extra`` (a JSON object as text, or already a mapping).
    :raises MidjourneyConfigurationError: the extra is not a JSON object.
    """
    if extra is None or (isinstance(extra, str) and not extra.strip()):
        return {}
    if isinstance(extra, Mapping):
        return dict(extra)
    try:
        value = json.loads(extra)
    except ValueError:
        raise MidjourneyConfigurationError(f"Connection {conn_id!r}: the extra field is not valid JSON") from None
    if not isinstance(value, dict):
        raise MidjourneyConfigurationError(f"Connection {conn_id!r}: the extra field must be a JSON object")
    return value


def passthrough_extra(extra: Mapping[str, Any]) -> dict[str, Any]:
    """The extras this provider does not read itself: options for ``HttpHook`` (``verify``, ``proxies``, headers)."""
    return {key: value for key, value in extra.items() if key not in OWN_EXTRA_KEYS}


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
    def from_connection(cls, conn_id: str, conn: Any) -> ConnectionSettings:
        """
        Build settings from an Airflow ``Connection`` (its extra is read with :func:`read_extra`).

        :param conn_id: the connection id, for messages.
        :param conn: the connection (``host``, ``schema``, ``port``, ``password``, ``extra``).
        :raises MidjourneyConfigurationError: see :meth:`from_parts`.
        """
        return cls.from_parts(
            conn_id=conn_id,
            host=conn.host,
            schema=conn.schema,
            port=conn.port,
            password=conn.password,
            extra=read_extra(conn_id, conn.extra),
        )

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

        :raises MidjourneyConfigurationError: no host, no key, or an extra of :data:`EXTRA_FIELDS` that is invalid.
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
        values = {extra_field.name: read_field(extra_field, conn_id, extra) for extra_field in EXTRA_FIELDS}
        return cls(
            conn_id=conn_id,
            base_url=base_url.rstrip("/"),
            api_key=password,
            auth_style=values["auth_style"],
            mode=values["mode"],
            timeout=float(values["timeout"]),
            batch_polling=values["batch_polling"],
            list_chunk_size=values["list_chunk_size"],
        )
