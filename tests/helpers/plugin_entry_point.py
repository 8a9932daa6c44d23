"""
Make the ``airflow.plugins`` entry point that ``pyproject.toml`` declares visible to Airflow in this environment.

An editable install records its entry points when it is installed: one made before ``pyproject.toml`` declared the
plugin (a virtual environment not reinstalled since) lacks it, and Airflow would not load the Midjourney view.
:func:`entry_point_folder` then writes a minimal distribution holding exactly the ``airflow.plugins`` entry points
``pyproject.toml`` declares, in a folder to put first on ``sys.path`` / ``PYTHONPATH``. Where the install is
current (``./dev.sh`` reinstalls whenever ``pyproject.toml`` changes, so always in CI) it writes nothing, so the
plugin is never registered twice. That the built wheel itself carries the entry point is proven by
``tests/test_distribution.py``.
"""

from __future__ import annotations

from importlib.metadata import entry_points
from pathlib import Path

import tomllib

from helpers import REPO

GROUP = "airflow.plugins"
#: The stand-in distribution's name (not the provider's: the provider's own metadata stays the one Airflow reads).
SHIM_NAME = "mjvideo_plugin_entry_point"


def declared_plugins() -> dict[str, str]:
    """The ``airflow.plugins`` entry points of ``pyproject.toml``: name → ``module:Class``."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    return dict(project.get("entry-points", {}).get(GROUP, {}))


def entry_point_folder(folder: Path) -> Path | None:
    """
    Write the stand-in distribution into ``folder`` if the installed metadata lacks a declared plugin.

    :param folder: an empty folder that outlives the test session's processes.
    :returns: ``folder``, to put first on the import path; ``None`` when the installed metadata is current.
    """
    declared = declared_plugins()
    installed = {entry.name: entry.value for entry in entry_points(group=GROUP)}
    if all(installed.get(name) == value for name, value in declared.items()):
        return None
    info = folder / f"{SHIM_NAME}-0.dist-info"
    info.mkdir(parents=True, exist_ok=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {SHIM_NAME}\nVersion: 0\n")
    lines = [f"[{GROUP}]", *(f"{name} = {value}" for name, value in declared.items())]
    (info / "entry_points.txt").write_text("\n".join(lines) + "\n")
    return folder
