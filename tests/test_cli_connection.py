"""``airflow connections test <id>`` for a ``midjourney`` connection: success, a wrong key, a wrong URL.

The CLI calls the same ``MidjourneyHook.test_connection()`` as the UI's Test button (``[core]
test_connection = Enabled``). Each case runs the real CLI in a subprocess with the connection in the
environment.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import connection_json

from airflow_provider_mjvideo.testing import MidjourneyEmulator

CONN_ID = "mj_cli_test"


def _closed_port() -> int:
    """A loopback port that nothing listens on (bound, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _airflow_connections_test(conn: str, home: Path, *, enabled: bool = True) -> subprocess.CompletedProcess[str]:
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith("AIRFLOW_CONN_") and name.lower() not in ("http_proxy", "https_proxy", "all_proxy")
    }
    env.update(
        {
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__TEST_CONNECTION": "Enabled" if enabled else "Disabled",
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            f"AIRFLOW_CONN_{CONN_ID.upper()}": conn,
            "NO_PROXY": "127.0.0.1,localhost,::1",
            "no_proxy": "127.0.0.1,localhost,::1",
        }
    )
    return subprocess.run(
        [sys.executable, "-m", "airflow", "connections", "test", CONN_ID],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
        cwd=home,
    )


@pytest.fixture
def cli_home(tmp_path: Path) -> Path:
    home = tmp_path / "airflow-home"
    home.mkdir()
    return home


def test_success_against_a_healthy_server(emulator: MidjourneyEmulator, cli_home: Path) -> None:
    done = _airflow_connections_test(connection_json(emulator), cli_home)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Connection success!" in done.stdout
    assert "failed" not in done.stdout.lower()
    assert emulator.count("list") == 1  # one cheap read, no submission
    assert emulator.count("submit") == 0


def test_wrong_key_says_authentication_failed(emulator: MidjourneyEmulator, cli_home: Path) -> None:
    conn = json.loads(connection_json(emulator))
    conn["password"] = "sk-not-the-right-key"
    done = _airflow_connections_test(json.dumps(conn), cli_home)
    assert "Connection failed!" in done.stdout, done.stdout + done.stderr
    assert f"Authentication failed at {emulator.url}" in done.stdout
    assert "sk-not-the-right-key" not in done.stdout + done.stderr
    assert emulator.count("submit") == 0


def test_wrong_url_says_cannot_reach(cli_home: Path) -> None:
    url = f"http://127.0.0.1:{_closed_port()}"
    conn = json.dumps({"conn_type": "midjourney", "host": url, "password": "sk-any", "extra": {"timeout": 5}})
    done = _airflow_connections_test(conn, cli_home)
    assert "Connection failed!" in done.stdout, done.stdout + done.stderr
    assert f"Cannot reach {url}" in done.stdout


def test_disabled_by_default_configuration(emulator: MidjourneyEmulator, cli_home: Path) -> None:
    done = _airflow_connections_test(connection_json(emulator), cli_home, enabled=False)
    assert done.returncode != 0
    assert "Testing connections is disabled" in done.stdout
    assert emulator.count("list") == 0
