"""Provider metadata read by Airflow's ProvidersManager through the ``apache_airflow_provider`` entry point."""

from __future__ import annotations

from typing import Any

from airflow_provider_mjvideo import __version__
from airflow_provider_mjvideo.connection_fields import conn_fields, ui_field_behaviour

#: Extra fields of the ``midjourney`` connection, as JSON Schema (the Airflow 3.2+ connection form).
CONNECTION_EXTRA_FIELDS: dict[str, dict[str, Any]] = conn_fields()
#: Which standard connection fields the form hides, relabels and fills with placeholders.
CONNECTION_UI_FIELD_BEHAVIOUR: dict[str, Any] = ui_field_behaviour()


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
                    "airflow_provider_mjvideo.operators.image",
                    "airflow_provider_mjvideo.operators.download",
                    "airflow_provider_mjvideo.operators.review",
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
        "extra-links": [
            "airflow_provider_mjvideo.links.MidjourneyVideoLink",
            "airflow_provider_mjvideo.links.MidjourneyImageLink",
        ],
        # Read by Airflow only with [core] lazy_load_providers = False; the airflow.plugins entry point always is.
        "plugins": [{"name": "midjourney", "plugin-class": "airflow_provider_mjvideo.ui.plugin.MidjourneyViewPlugin"}],
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
