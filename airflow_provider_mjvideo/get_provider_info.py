"""Provider metadata read by Airflow's ProvidersManager through the ``apache_airflow_provider`` entry point."""

from __future__ import annotations

from typing import Any

from airflow_provider_mjvideo import __version__

#: Extra fields of the ``midjourney`` connection, as JSON Schema (the Airflow 3.2+ connection form).
CONNECTION_EXTRA_FIELDS: dict[str, dict[str, Any]] = {
    "auth_style": {
        "label": "Auth style",
        "description": "How the API key is sent: 'bearer' (Authorization: Bearer <key>, most gateways), "
        "'mj-api-secret' (novicezk proxies) or 'raw' (Authorization: <key>, trueai proxies).",
        "schema": {
            "type": "string",
            "enum": ["bearer", "mj-api-secret", "raw"],
            "default": "bearer",
            "title": "Auth style",
        },
    },
    "mode": {
        "label": "Speed mode",
        "description": "Force a speed mode with the /mj-<mode> route prefix (trueai and new-api). "
        "Leave empty to use the account's default.",
        "schema": {
            "type": ["string", "null"],
            "enum": ["fast", "relax", "turbo"],
            "title": "Speed mode",
        },
    },
    "timeout": {
        "label": "Request timeout (seconds)",
        "description": "Timeout of one HTTP request, in seconds (default 30).",
        "schema": {"type": ["number", "null"], "minimum": 1, "default": 30, "title": "Request timeout"},
    },
    "batch_polling": {
        "label": "Batch polling",
        "description": "Deferred waits on this connection share one poller per triggerer that asks for many "
        "tasks per list-by-condition request (default). Off: one fetch per task per poll interval.",
        "schema": {"type": ["boolean", "null"], "default": True, "title": "Batch polling"},
    },
    "list_chunk_size": {
        "label": "List chunk size",
        "description": "The most task ids in one list-by-condition request of the shared poller (default 100).",
        "schema": {"type": ["integer", "null"], "minimum": 1, "default": 100, "title": "List chunk size"},
    },
}

#: Which standard connection fields the form hides, relabels and fills with placeholders.
CONNECTION_UI_FIELD_BEHAVIOUR: dict[str, Any] = {
    "hidden-fields": ["schema", "port", "login", "extra"],
    "relabeling": {"host": "Base URL", "password": "API key"},
    "placeholders": {
        "host": "https://api.example.com (scheme, host and optional path prefix)",
        "password": "your Midjourney proxy API key",
        "auth_style": "bearer",
        "mode": "fast, relax or turbo (optional)",
        "timeout": "30",
        "list_chunk_size": "100",
    },
}


def get_provider_info() -> dict[str, Any]:
    """Return the provider description that Airflow's ProvidersManager validates and registers."""
    return {
        "package-name": "airflow-provider-mjvideo",
        "name": "Midjourney Video",
        "description": "Generate and extend Midjourney videos from Airflow DAGs through midjourney-proxy "
        "compatible APIs.",
        "versions": [__version__],
        "integrations": [
            {
                "integration-name": "Midjourney",
                "external-doc-url": "https://docs.midjourney.com/",
                "tags": ["software"],
            }
        ],
        "hooks": [
            {
                "integration-name": "Midjourney",
                "python-modules": ["airflow_provider_mjvideo.hooks.midjourney"],
            }
        ],
        "operators": [
            {
                "integration-name": "Midjourney",
                "python-modules": [
                    "airflow_provider_mjvideo.operators.video",
                    "airflow_provider_mjvideo.operators.download",
                ],
            }
        ],
        "sensors": [
            {
                "integration-name": "Midjourney",
                "python-modules": ["airflow_provider_mjvideo.sensors.video"],
            }
        ],
        "triggers": [
            {
                "integration-name": "Midjourney",
                "python-modules": ["airflow_provider_mjvideo.triggers.video"],
            }
        ],
        "extra-links": ["airflow_provider_mjvideo.links.MidjourneyVideoLink"],
        "connection-types": [
            {
                "connection-type": "midjourney",
                "hook-class-name": "airflow_provider_mjvideo.hooks.midjourney.MidjourneyHook",
                "hook-name": "Midjourney",
                "conn-fields": CONNECTION_EXTRA_FIELDS,
                "ui-field-behaviour": CONNECTION_UI_FIELD_BEHAVIOUR,
            }
        ],
    }
