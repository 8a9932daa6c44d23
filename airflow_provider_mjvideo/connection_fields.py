"""
The ``midjourney`` connection's extra fields: the one table (name, label, type, default, choices, help text).

Everything about the extras is generated from :data:`EXTRA_FIELDS`: ``get_provider_info()``'s ``conn-fields`` and
placeholders (the Airflow 3.2+ form), the WTForms widgets of Airflow 3.0/3.1
(:mod:`airflow_provider_mjvideo.connection_form`), :data:`OWN_EXTRA_KEYS` (the extras that are not HTTP headers)
and the settings parser (:meth:`airflow_provider_mjvideo.connection.ConnectionSettings.from_parts`).

This module imports nothing from Airflow: ``get_provider_info()`` reads it while Airflow's ProvidersManager
is still initialising, when importing the provider's Airflow-based modules would be circular.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

#: How the API key is sent (see :func:`airflow_provider_mjvideo.connection.auth_headers`).
AUTH_STYLES: Final = ("bearer", "mj-api-secret", "raw")
#: Speed modes forced with a ``/mj-<mode>`` route prefix.
SPEED_MODES: Final = ("fast", "relax", "turbo")
DEFAULT_TIMEOUT: Final = 30.0
#: Ids per ``list-by-condition`` request unless the connection's ``list_chunk_size`` extra says otherwise.
DEFAULT_LIST_CHUNK_SIZE: Final = 100
#: The connection id operators, sensors and hooks use unless told otherwise.
DEFAULT_CONN_ID: Final = "midjourney_default"
#: Which standard connection fields the form hides, and how it relabels the others.
HIDDEN_FIELDS: Final = ("schema", "port", "login", "extra")
RELABELING: Final = {"host": "Base URL", "password": "API key"}
STANDARD_PLACEHOLDERS: Final = {
    "host": "https://api.example.com (scheme, host and optional path prefix)",
    "password": "your Midjourney proxy API key",
}

#: JSON Schema type of each kind of extra field.
_JSON_TYPES: Final = {"choice": "string", "number": "number", "integer": "integer", "boolean": "boolean"}


@dataclass(frozen=True)
class ExtraField:
    """
    One extra field of the ``midjourney`` connection.

    :param name: the key in the connection's extra.
    :param label: the form's label.
    :param kind: ``choice`` (one of ``choices``), ``number`` (positive), ``integer`` (positive) or ``boolean``.
    :param help: the form's help text.
    :param default: the value when the extra is missing or empty (``None``: unset).
    :param choices: the allowed values of a ``choice``.
    :param placeholder: the form's placeholder, if any.
    :param required: the form always sends a value (its JSON Schema type does not admit ``null``).
    """

    name: str
    label: str
    kind: str
    help: str
    default: Any = None
    choices: tuple[str, ...] = ()
    placeholder: str | None = None
    required: bool = False

    def json_schema(self) -> dict[str, Any]:
        """The field's JSON Schema as Airflow 3.2+ reads it from ``conn-fields``."""
        json_type = _JSON_TYPES[self.kind]
        schema: dict[str, Any] = {"type": json_type if self.required else [json_type, "null"]}
        if self.choices:
            schema["enum"] = list(self.choices)
        if self.kind in ("number", "integer"):
            schema["minimum"] = 1
        if self.default is not None:
            schema["default"] = self.default
        schema["title"] = self.label
        return schema


#: The connection's extra fields: the one table (see the module docstring).
EXTRA_FIELDS: Final = (
    ExtraField(
        "auth_style",
        "Auth style",
        "choice",
        "How the API key is sent: 'bearer' (Authorization: Bearer <key>, most gateways), "
        "'mj-api-secret' (novicezk proxies) or 'raw' (Authorization: <key>, trueai proxies).",
        default="bearer",
        choices=AUTH_STYLES,
        placeholder="bearer",
        required=True,
    ),
    ExtraField(
        "mode",
        "Speed mode",
        "choice",
        "Force a speed mode with the /mj-<mode> route prefix (trueai and new-api). "
        "Leave empty to use the account's default.",
        choices=SPEED_MODES,
        placeholder="fast, relax or turbo (optional)",
    ),
    ExtraField(
        "timeout",
        "Request timeout (seconds)",
        "number",
        "Timeout of one HTTP request, in seconds (default 30).",
        default=int(DEFAULT_TIMEOUT),
        placeholder=str(int(DEFAULT_TIMEOUT)),
    ),
    ExtraField(
        "batch_polling",
        "Batch polling",
        "boolean",
        "Deferred waits on this connection share one poller per triggerer that asks for many tasks per "
        "list-by-condition request (default). Off: one fetch per task per poll interval.",
        default=True,
    ),
    ExtraField(
        "list_chunk_size",
        "List chunk size",
        "integer",
        f"The most task ids in one list-by-condition request of the shared poller (default {DEFAULT_LIST_CHUNK_SIZE}).",
        default=DEFAULT_LIST_CHUNK_SIZE,
        placeholder=str(DEFAULT_LIST_CHUNK_SIZE),
    ),
)
_FIELDS_BY_NAME: Final = {extra.name: extra for extra in EXTRA_FIELDS}
#: Extra keys this provider reads itself; HttpHook must not turn them into request headers.
OWN_EXTRA_KEYS: Final = frozenset(_FIELDS_BY_NAME)


def conn_fields() -> dict[str, dict[str, Any]]:
    """``conn-fields`` of ``get_provider_info()``: each extra as label, description and JSON Schema."""
    return {
        extra.name: {"label": extra.label, "description": extra.help, "schema": extra.json_schema()}
        for extra in EXTRA_FIELDS
    }


def ui_field_behaviour() -> dict[str, Any]:
    """``ui-field-behaviour`` of ``get_provider_info()``: hidden and relabelled standard fields, placeholders."""
    placeholders = dict(STANDARD_PLACEHOLDERS)
    placeholders.update({extra.name: extra.placeholder for extra in EXTRA_FIELDS if extra.placeholder})
    return {"hidden-fields": list(HIDDEN_FIELDS), "relabeling": dict(RELABELING), "placeholders": placeholders}
