"""The provider registers with Airflow: schema-valid metadata, the connection type, the hook's form."""

from __future__ import annotations

import json
import subprocess
import sys
from importlib.metadata import entry_points
from pathlib import Path

import airflow
import jsonschema
import pytest

from airflow_provider_mjvideo import __version__
from airflow_provider_mjvideo.get_provider_info import get_provider_info


def test_provider_info_validates_against_airflows_schema():
    schema = json.loads((Path(airflow.__file__).parent / "provider_info.schema.json").read_text())
    jsonschema.validate(get_provider_info(), schema)


def test_entry_point_is_installed_and_returns_the_same_info():
    (entry,) = [ep for ep in entry_points(group="apache_airflow_provider") if ep.value.startswith("airflow_provider")]
    assert entry.load()() == get_provider_info()


#: Declared modules that need Airflow 3.1+ and, below it, refuse to import with a message saying so.
NEEDS_3_1 = {"airflow_provider_mjvideo.operators.review"}


def test_every_declared_module_and_class_imports():
    import importlib

    from airflow.providers.common.compat.sdk import AirflowOptionalProviderFeatureException

    from airflow_provider_mjvideo.versions import HAS_UI_AND_REVIEW

    info = get_provider_info()
    for section in ("hooks", "operators", "sensors", "triggers"):
        for item in info[section]:
            for module in item["python-modules"]:
                if module in NEEDS_3_1 and not HAS_UI_AND_REVIEW:
                    with pytest.raises(AirflowOptionalProviderFeatureException, match=r"needs Airflow 3\.1 or newer"):
                        importlib.import_module(module)
                else:
                    importlib.import_module(module)
    for plugin in info["plugins"]:
        module, _, name = plugin["plugin-class"].rpartition(".")
        assert hasattr(importlib.import_module(module), name)
    for dotted in [*info["extra-links"], info["connection-types"][0]["hook-class-name"]]:
        module, _, name = dotted.rpartition(".")
        assert hasattr(importlib.import_module(module), name)


def test_providers_manager_sees_the_midjourney_connection_type():
    from airflow.providers_manager import ProvidersManager

    manager = ProvidersManager()
    assert manager.providers["airflow-provider-mjvideo"].version == __version__
    try:  # where tasks look hooks up since Airflow 3.2
        from airflow.sdk.providers_manager_runtime import ProvidersManagerTaskRuntime as Runtime
    except ImportError:  # Airflow 3.0/3.1
        Runtime = ProvidersManager
    hook = Runtime().hooks["midjourney"]
    assert hook is not None
    assert hook.hook_class_name == "airflow_provider_mjvideo.hooks.midjourney.MidjourneyHook"
    assert hook.connection_id_attribute_name == "midjourney_conn_id"
    assert hook.hook_name == "Midjourney"


def _json_document(stdout: str) -> list[dict[str, object]]:
    """The JSON list an ``airflow ... -o json`` printed (Airflow 3.0 may log INFO lines to stdout before it)."""
    return json.loads(stdout[stdout.index("[{") :])


def test_airflow_cli_lists_provider_and_hook():
    providers = subprocess.run(
        [sys.executable, "-m", "airflow", "providers", "list", "-o", "json"], capture_output=True, text=True, check=True
    )
    listed = {row["package_name"]: row["version"] for row in _json_document(providers.stdout)}
    assert listed["airflow-provider-mjvideo"] == __version__
    hooks = subprocess.run(
        [sys.executable, "-m", "airflow", "providers", "hooks", "-o", "json"],
        capture_output=True,
        text=True,
        check=True,
    )
    types = {row["connection_type"]: row for row in _json_document(hooks.stdout)}
    assert types["midjourney"]["class"] == "airflow_provider_mjvideo.hooks.midjourney.MidjourneyHook"


def test_connection_form_declarations_agree():
    from airflow_provider_mjvideo.connection import OWN_EXTRA_KEYS
    from airflow_provider_mjvideo.hooks.midjourney import MidjourneyHook

    conn_type = get_provider_info()["connection-types"][0]
    # Every extra the provider reads itself has a form field, and nothing else does.
    assert set(conn_type["conn-fields"]) == set(OWN_EXTRA_KEYS)
    assert set(OWN_EXTRA_KEYS) == {"auth_style", "mode", "timeout", "batch_polling", "list_chunk_size"}
    assert conn_type["conn-fields"]["auth_style"]["schema"]["enum"] == ["bearer", "mj-api-secret", "raw"]
    behaviour = MidjourneyHook.get_ui_field_behaviour()  # the hook method's keys are snake_case
    assert behaviour == {key.replace("-", "_"): value for key, value in conn_type["ui-field-behaviour"].items()}
    assert behaviour["relabeling"] == {"host": "Base URL", "password": "API key"}
    assert {"login", "port", "schema"} <= set(behaviour["hidden_fields"])
