"""
Shared test helpers (imported as ``helpers``; no Airflow import here, so importing it never reads Airflow's config).

* :mod:`helpers.dag_runs`: run DAGs with ``dag.test()`` and read what a run left in the metadata database.
* :mod:`helpers.airflow_processes`: real Airflow components in process groups of their own.
* :mod:`helpers.scripted_http`: a tiny scripted HTTP server for single edge cases the emulator cannot produce.
* :mod:`helpers.png`: a minimal PNG reader, to check downloaded images pixel by pixel.
* :mod:`helpers.emulator_api`: calls to a running emulator's image pipeline (submit, press a button, wait).
* :mod:`helpers.pictures`: one real picture of each type the API takes (PNG, JPEG, WebP, GIF).
* :mod:`helpers.storage`: a memory filesystem that records the calls reaching it; a record of local file opens.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from airflow_provider_mjvideo.testing import MidjourneyEmulator

#: The repository's top folder.
REPO = Path(__file__).resolve().parent.parent.parent
#: A key that is easy to search for in logs, XComs and messages.
SECRET_KEY = "sk-test-SECRET-a1b2c3d4e5f6"


def connection_json(emu: MidjourneyEmulator, **extra: object) -> str:
    """The ``AIRFLOW_CONN_*`` JSON for a connection to ``emu`` (auth style as the emulator demands, 5 s timeout)."""
    extras: dict[str, object] = {
        "auth_style": emu.config.auth_style if emu.config.auth_style != "any" else "bearer",
        "timeout": 5,
    }
    extras.update(extra)
    return json.dumps({"conn_type": "midjourney", "host": emu.url, "password": emu.config.api_key, "extra": extras})
