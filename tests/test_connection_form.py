"""The ``midjourney`` connection form as Airflow's UI receives it, on every supported Airflow version.

The UI builds "Add Connection" from the API server's ``GET /ui/connections/hook_meta``, which is
``HookMetaService.hook_meta_data()``. On Airflow 3.2+ that reads ``conn-fields``/``ui-field-behaviour``
from ``get_provider_info()``; on 3.0/3.1 it calls the hook's ``get_connection_form_widgets()`` /
``get_ui_field_behaviour()``. Each check runs in a fresh interpreter, because ProvidersManager is a
process-wide singleton that caches the forms.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from airflow.providers.common.compat.version_compat import AIRFLOW_V_3_2_PLUS

from airflow_provider_mjvideo.get_provider_info import CONNECTION_EXTRA_FIELDS, CONNECTION_UI_FIELD_BEHAVIOUR

_PROBE = textwrap.dedent(
    """
    import json, warnings
    warnings.simplefilter("always")
    with warnings.catch_warnings(record=True) as caught:
        from airflow.api_fastapi.core_api.services.ui.connections import HookMetaService
        metas = HookMetaService.hook_meta_data()
    (meta,) = [m for m in metas if m.connection_type == "midjourney"]
    ours = [
        f"{w.category.__name__}: {w.message}"
        for w in caught
        if "midjourney" in str(w.message).lower() or "mjvideo" in str(w.message).lower()
    ]
    print("RESULT " + json.dumps({"meta": meta.model_dump(mode="json"), "warnings": ours}))
    """
)

#: Airflow 3.0/3.1 import WTForms, flask_babel and FAB's widgets to read a hook's form (the FAB provider
#: brings them; Airflow's form reader then replaces the field classes with its own mocks). Stand-ins:
_FORM_LIBRARY_STUBS = {
    "wtforms/__init__.py": """
        class _Field:
            def __init__(self, *args, **kwargs):
                pass
        class StringField(_Field): pass
        class IntegerField(_Field): pass
        class PasswordField(_Field): pass
        class BooleanField(_Field): pass
    """,
    "wtforms/fields/__init__.py": "from wtforms import BooleanField, IntegerField, PasswordField, StringField\n",
    "wtforms/fields/simple.py": "from wtforms import BooleanField, PasswordField, StringField\n",
    "wtforms/validators.py": """
        class Optional:
            def __init__(self, *args, **kwargs): pass
        class AnyOf:
            def __init__(self, values, *args, **kwargs): self.values = values
        any_of = AnyOf
        class NumberRange:
            def __init__(self, *args, **kwargs): pass
    """,
    "flask_babel/__init__.py": "def lazy_gettext(text):\n    return text\n",
    "flask_appbuilder/__init__.py": "",
    "flask_appbuilder/fieldwidgets.py": """
        class BS3TextFieldWidget: pass
        class BS3TextAreaFieldWidget: pass
        class BS3PasswordFieldWidget: pass
    """,
}


def _write_stubs(root: Path) -> None:
    for relative, text in _FORM_LIBRARY_STUBS.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))


@pytest.fixture(scope="module")
def ui_form(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The hook metadata of ``midjourney`` from a fresh interpreter, and the warnings that name it."""
    root = tmp_path_factory.mktemp("hook-meta")
    env = {name: value for name, value in os.environ.items() if not name.startswith("AIRFLOW_CONN_")}
    env["AIRFLOW_HOME"] = str(root / "home")
    if not AIRFLOW_V_3_2_PLUS:
        _write_stubs(root / "stubs")
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(root / "stubs"), env.get("PYTHONPATH")]))
    done = subprocess.run(
        [sys.executable, "-c", _PROBE], env=env, capture_output=True, text=True, timeout=180, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr
    (line,) = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    return json.loads(line[len("RESULT ") :])


def _schema(field: dict[str, Any]) -> dict[str, Any]:
    return field["schema"]


def test_extra_fields_are_the_declared_ones(ui_form: dict[str, Any]) -> None:
    extra = ui_form["meta"]["extra_fields"]
    assert set(extra) == set(CONNECTION_EXTRA_FIELDS)
    for name, spec in CONNECTION_EXTRA_FIELDS.items():
        assert _schema(extra[name])["title"] == spec["label"], name
        assert extra[name]["value"] == spec["schema"].get("default"), name
        assert extra[name]["description"], name


def test_auth_style_and_mode_are_choices(ui_form: dict[str, Any]) -> None:
    extra = ui_form["meta"]["extra_fields"]
    assert _schema(extra["auth_style"])["enum"] == ["bearer", "mj-api-secret", "raw"]
    assert extra["auth_style"]["value"] == "bearer"
    assert {"fast", "relax", "turbo"} <= set(_schema(extra["mode"])["enum"])
    assert extra["timeout"]["value"] == 30


def test_standard_fields_are_relabelled_hidden_and_have_placeholders(ui_form: dict[str, Any]) -> None:
    meta = ui_form["meta"]
    assert meta["hook_name"] == "Midjourney"
    assert meta["hook_class_name"] == "airflow_provider_mjvideo.hooks.midjourney.MidjourneyHook"
    std = meta["standard_fields"]
    assert std["host"] == {
        "hidden": False,
        "title": "Base URL",
        "placeholder": CONNECTION_UI_FIELD_BEHAVIOUR["placeholders"]["host"],
    }
    assert std["password"]["title"] == "API key"
    assert std["password"]["hidden"] is False
    assert std["password"]["placeholder"]
    for unused in ("url_schema", "port", "login"):
        assert std[unused]["hidden"] is True, unused


def test_no_deprecation_warning_about_the_hook(ui_form: dict[str, Any]) -> None:
    assert ui_form["warnings"] == []


@pytest.mark.skipif(not AIRFLOW_V_3_2_PLUS, reason="conn-fields exist since Airflow 3.2")
def test_airflow_3_2_plus_reads_conn_fields_not_the_hook_methods(ui_form: dict[str, Any]) -> None:
    from airflow_provider_mjvideo.hooks.midjourney import MidjourneyHook

    assert "get_connection_form_widgets" not in MidjourneyHook.__dict__
    assert "get_ui_field_behaviour" not in MidjourneyHook.__dict__
    extra = ui_form["meta"]["extra_fields"]
    for name, spec in CONNECTION_EXTRA_FIELDS.items():
        assert extra[name]["description"] == spec["description"], name


@pytest.mark.skipif(AIRFLOW_V_3_2_PLUS, reason="the hook's form methods are read below Airflow 3.2 only")
def test_airflow_3_0_and_3_1_read_the_hook_methods() -> None:
    from airflow_provider_mjvideo.hooks.midjourney import MidjourneyHook

    # Airflow only looks at methods that the registered hook class defines itself.
    assert "get_connection_form_widgets" in MidjourneyHook.__dict__
    assert "get_ui_field_behaviour" in MidjourneyHook.__dict__
