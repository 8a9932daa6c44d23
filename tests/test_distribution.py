"""
The distribution: sdist and wheel build, their metadata passes ``twine check``, and the wheel installed
into a fresh virtual environment registers with Airflow (``airflow providers list``) and brings the Midjourney
view's plugin along (``airflow plugins``).

The fresh environment gets exactly the versions of this one (``uv pip freeze`` as constraints) from uv's
cache, ``--offline``: the test contacts no package index.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile
import zipfile
from importlib.metadata import version
from pathlib import Path

import pytest
from helpers import REPO

from airflow_provider_mjvideo import __version__

pytestmark = pytest.mark.slow

DIST_NAME = "airflow_provider_mjvideo"


def _run(*args: str | Path, timeout: float = 600, env: dict[str, str] | None = None, cwd: Path | None = None) -> str:
    done = subprocess.run(
        [str(arg) for arg in args], capture_output=True, text=True, timeout=timeout, check=False, env=env, cwd=cwd
    )
    assert done.returncode == 0, f"{' '.join(map(str, args))} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout


@pytest.fixture(scope="module")
def uv() -> str:
    find_uv_bin = pytest.importorskip("uv").find_uv_bin
    return str(find_uv_bin())


@pytest.fixture(scope="module")
def dist(uv: str, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("dist")
    _run(uv, "build", "--out-dir", out, REPO)
    (wheel,) = out.glob(f"{DIST_NAME}-{__version__}-py3-none-any.whl")
    (sdist,) = out.glob(f"{DIST_NAME}-{__version__}.tar.gz")
    return {"wheel": wheel, "sdist": sdist}


def test_twine_check_passes(dist: dict[str, Path]) -> None:
    output = _run(sys.executable, "-m", "twine", "check", "--strict", dist["wheel"], dist["sdist"])
    assert output.count("PASSED") == 2, output


def test_wheel_contents_and_metadata(dist: dict[str, Path]) -> None:
    with zipfile.ZipFile(dist["wheel"]) as wheel:
        names = set(wheel.namelist())
        info = f"{DIST_NAME}-{__version__}.dist-info"
        metadata = wheel.read(f"{info}/METADATA").decode()
        entry_points = wheel.read(f"{info}/entry_points.txt").decode()
    assert f"{DIST_NAME}/py.typed" in names
    assert f"{DIST_NAME}/get_provider_info.py" in names
    assert {f"{DIST_NAME}/testing/clips/clip{i}.mp4" for i in range(4)} <= names
    assert not any(name.startswith(("tests/", "example_dags/")) for name in names)
    assert "[apache_airflow_provider]" in entry_points
    assert "provider_info = airflow_provider_mjvideo.get_provider_info:get_provider_info" in entry_points
    assert "[airflow.plugins]" in entry_points
    assert "midjourney = airflow_provider_mjvideo.ui.plugin:MidjourneyViewPlugin" in entry_points
    assert f"{DIST_NAME}/ui/static/mjvideo.css" in names
    assert f"Version: {__version__}" in metadata
    assert "License-Expression: Apache-2.0" in metadata
    assert "Requires-Dist: apache-airflow>=3.0.2" in metadata


def test_sdist_has_the_sources_tests_and_changelog(dist: dict[str, Path]) -> None:
    with tarfile.open(dist["sdist"]) as sdist:
        names = {name.split("/", 1)[1] for name in sdist.getnames() if "/" in name}
    assert {
        "pyproject.toml",
        "README.md",
        "CHANGELOG.md",
        "tests/conftest.py",
        "example_dags/mjvideo_chain.py",
    } <= names
    assert not any(name.startswith((".venv", "artifacts/", ".airflow-home")) for name in names)


def test_wheel_installs_in_a_fresh_venv_and_airflow_lists_the_provider(
    uv: str, dist: dict[str, Path], tmp_path: Path
) -> None:
    venv = tmp_path / "venv"
    _run(uv, "venv", "--quiet", "--python", sys.executable, venv)
    python = venv / "bin" / "python"
    # Pin everything to this environment's versions (all in uv's cache); leave the editable checkout out.
    frozen = _run(uv, "pip", "freeze", "--python", sys.executable)
    constraints = tmp_path / "constraints.txt"
    constraints.write_text(
        "".join(line + "\n" for line in frozen.splitlines() if line and not line.startswith(("-e", DIST_NAME)))
    )
    airflow = f"apache-airflow=={version('apache-airflow')}"
    _run(uv, "pip", "install", "--quiet", "--offline", "--python", python, "-c", constraints, dist["wheel"], airflow)

    # Outside the checkout, so that nothing imports the provider from the working tree.
    env = {name: value for name, value in os.environ.items() if not name.startswith("AIRFLOW") and name != "PYTHONPATH"}
    env.update({"AIRFLOW_HOME": str(tmp_path / "airflow-home"), "AIRFLOW__CORE__LOAD_EXAMPLES": "False"})
    listed = _run(venv / "bin" / "airflow", "providers", "list", "-o", "json", env=env, cwd=tmp_path)
    providers = {row["package_name"]: row["version"] for row in json.loads(listed)}
    assert providers["airflow-provider-mjvideo"] == __version__
    hooks = json.loads(_run(venv / "bin" / "airflow", "providers", "hooks", "-o", "json", env=env, cwd=tmp_path))
    types = {row["connection_type"]: row["class"] for row in hooks}
    assert types["midjourney"] == "airflow_provider_mjvideo.hooks.midjourney.MidjourneyHook"
    # The Midjourney view is a plugin as soon as the wheel is installed: no file in plugins/.
    plugins = _run(venv / "bin" / "airflow", "plugins", "-o", "json", env=env, cwd=tmp_path)
    (view,) = [row for row in json.loads(plugins[plugins.index("[{") :]) if row["name"] == "midjourney"]
    assert [app["url_prefix"] for app in view["fastapi_apps"]] == ["/midjourney"]
    assert [row["destination"] for row in view["external_views"]] == ["nav", "dag_run", "task_instance"]
    # The installed copy is the wheel's, not this checkout.
    where = _run(python, "-c", "import airflow_provider_mjvideo as m; print(m.__file__)", env=env, cwd=tmp_path)
    assert str(venv) in where
