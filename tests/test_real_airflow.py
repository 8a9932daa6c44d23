"""
End to end with real Airflow processes: api-server, scheduler (LocalExecutor), dag-processor, triggerer.

Runs ``example_dags/mjvideo_chain.py`` against the emulator on SQLite in a fresh ``AIRFLOW_HOME``. The
emulator's videos never finish on their own: the test completes each one as soon as its sensor is seen
``deferred`` in the metadata database, so every wait provably goes through the triggerer, whatever
the scheduling latency of the machine.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from conftest import REPO, SECRET_KEY, connection_json

from airflow_provider_mjvideo.testing import EmulatorConfig, MidjourneyEmulator

pytestmark = pytest.mark.slow

DAG_ID = "mjvideo_chain"
SUBMITS = ("generate", "extend_1", "extend_2")
WAITS = ("wait_generate", "wait_extend_1", "wait_extend_2")
COMPONENTS = ("api-server", "scheduler", "dag-processor", "triggerer")
#: Bounds (seconds); generous for a loaded 2-core machine.
MIGRATE_TIMEOUT = 300
STARTUP_TIMEOUT = 180
RUN_TIMEOUT = 240
STOP_TIMEOUT = 30


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _proc_stat(pid: int) -> tuple[str, int, int] | None:
    """(state, pgrp, session) of ``pid``, or None when it is gone."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = raw[raw.rindex(")") + 2 :].split()
    return fields[0], int(fields[2]), int(fields[3])


def _live_pids_in_sessions(sessions: set[int]) -> list[int]:
    """Processes (not zombies) whose session is one of ``sessions``; task processes get their own group."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            stat = _proc_stat(int(entry))
            if stat and stat[0] != "Z" and stat[2] in sessions:
                found.append(int(entry))
    return found


def _tcp_peers(pids: list[int]) -> set[str]:
    """Remote addresses of the established/connecting TCP sockets that ``pids`` hold."""
    inodes: set[str] = set()
    for pid in pids:
        with contextlib.suppress(OSError):
            for fd in os.listdir(f"/proc/{pid}/fd"):
                with contextlib.suppress(OSError):
                    link = os.readlink(f"/proc/{pid}/fd/{fd}")
                    if link.startswith("socket:["):
                        inodes.add(link[8:-1])
    peers = set()
    for table, width in (("/proc/net/tcp", 8), ("/proc/net/tcp6", 32)):
        with contextlib.suppress(OSError):
            for line in Path(table).read_text().splitlines()[1:]:
                cols = line.split()
                remote, tcp_state, inode = cols[2], cols[3], cols[9]
                if inode not in inodes or tcp_state == "0A":  # 0A: LISTEN
                    continue
                addr = bytes.fromhex(remote.split(":")[0][:width])
                # /proc prints addresses as host-order 32-bit words.
                words = [addr[i : i + 4][::-1] for i in range(0, len(addr), 4)]
                peers.add(socket.inet_ntop(socket.AF_INET if width == 8 else socket.AF_INET6, b"".join(words)))
    return peers


def _is_loopback(addr: str) -> bool:
    return addr.startswith("127.") or addr in ("::1", "::") or addr == "0.0.0.0" or addr.startswith("::ffff:127.")


def _tail(path: Path, lines: int = 60) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError as err:
        return f"<{err}>"


@dataclass
class AirflowDeployment:
    """A fresh Airflow home and its running components."""

    home: Path
    env: dict[str, str]
    out_dir: Path
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    @property
    def db_path(self) -> Path:
        return self.home / "airflow.db"

    def cli(self, *args: str, timeout: float = 120) -> str:
        done = subprocess.run(
            [sys.executable, "-m", "airflow", *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            cwd=self.home,
        )
        assert done.returncode == 0, f"airflow {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}"
        return done.stdout

    def start(self, name: str) -> None:
        with (self.out_dir / f"{name}.log").open("wb") as out:
            self.procs[name] = subprocess.Popen(
                [sys.executable, "-m", "airflow", name],
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                cwd=self.home,
                start_new_session=True,
            )

    def query(self, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        """Read the metadata database directly (read-only, short-lived connection)."""
        if not self.db_path.exists():
            return []
        conn = sqlite3.connect(f"file:{self.db_path}?mode=ro", uri=True, timeout=20)
        try:
            return conn.execute(sql, params).fetchall()
        except sqlite3.OperationalError as err:
            if "no such table" in str(err):
                return []
            raise
        finally:
            conn.close()

    def check_alive(self) -> None:
        for name, proc in self.procs.items():
            assert proc.poll() is None, (
                f"airflow {name} exited with {proc.returncode}:\n{_tail(self.out_dir / f'{name}.log')}"
            )

    def session_pids(self) -> list[int]:
        return _live_pids_in_sessions({proc.pid for proc in self.procs.values()})

    def stop(self) -> list[int]:
        """SIGTERM every process group, SIGKILL what is left after a timeout; return survivors (should be none)."""
        for proc in self.procs.values():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT
        while time.monotonic() < deadline and self.session_pids():
            for proc in self.procs.values():
                proc.poll()
            time.sleep(0.5)
        for proc in self.procs.values():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
        # Task and trigger processes run in process groups of their own (same session): sweep those too.
        for pid in self.session_pids():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        for proc in self.procs.values():
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=10)
        time.sleep(0.5)
        return self.session_pids()

    def diagnostics(self) -> str:
        parts = [f"--- {path.name} ---\n{_tail(path)}" for path in sorted(self.out_dir.glob("*.log"))]
        for path in sorted((self.home / "logs").rglob("*.log")):
            if f"dag_id={DAG_ID}" in str(path):
                parts.append(f"--- {path.relative_to(self.home)} ---\n{_tail(path, 30)}")
        return "\n".join(parts)


@pytest.fixture
def slow_emulator() -> Iterator[MidjourneyEmulator]:
    """An emulator whose videos only finish when the test says so (see the module docstring)."""
    emu = MidjourneyEmulator(EmulatorConfig(api_key=SECRET_KEY, video_duration=3600, auth_style="bearer")).start()
    try:
        yield emu
    finally:
        emu.stop()


@pytest.fixture
def airflow_deployment(tmp_path: Path, slow_emulator: MidjourneyEmulator) -> Iterator[AirflowDeployment]:
    home = tmp_path / "airflow-home"
    home.mkdir()
    out_dir = tmp_path / "process-output"
    out_dir.mkdir()
    port = _free_port()
    api = f"http://127.0.0.1:{port}"
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith("AIRFLOW") and name.lower() not in ("http_proxy", "https_proxy", "all_proxy")
    }
    env.update(
        {
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
            "NO_PROXY": "127.0.0.1,localhost,::1",
            "no_proxy": "127.0.0.1,localhost,::1",
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "example_dags"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
            "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
            "AIRFLOW__CORE__PARALLELISM": "4",
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{api}/execution/",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
            "AIRFLOW__API__HOST": "127.0.0.1",
            "AIRFLOW__API__PORT": str(port),
            "AIRFLOW__API__BASE_URL": api,
            "AIRFLOW__API__WORKERS": "1",
            "AIRFLOW__API__SECRET_KEY": "mjvideo-e2e-api-secret",
            "AIRFLOW__API_AUTH__JWT_SECRET": "mjvideo-e2e-jwt-secret-0123456789abcdef",
            "AIRFLOW__DAG_PROCESSOR__PARSING_PROCESSES": "1",
            "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
            "AIRFLOW__DAG_PROCESSOR__BUNDLE_REFRESH_CHECK_INTERVAL": "1",
            "AIRFLOW__SCHEDULER__SCHEDULER_IDLE_SLEEP_TIME": "0.5",
            "AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK": "False",
            "AIRFLOW_CONN_MIDJOURNEY_DEFAULT": connection_json(slow_emulator),
            "MJVIDEO_POLL_INTERVAL": "1",
        }
    )
    deployment = AirflowDeployment(home=home, env=env, out_dir=out_dir)
    survivors: list[int] = []
    try:
        yield deployment
    finally:
        survivors = deployment.stop()
    assert not survivors, f"Airflow processes survived the teardown: {survivors}"


def _wait_for(what: str, check: Any, timeout: float, deployment: AirflowDeployment) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        deployment.check_alive()
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.5)


def _port_open(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(1)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def test_chain_runs_on_real_airflow_with_deferred_waits(
    airflow_deployment: AirflowDeployment, slow_emulator: MidjourneyEmulator
) -> None:
    deployment, emu = airflow_deployment, slow_emulator
    started = time.monotonic()
    phases: dict[str, float] = {}
    try:
        deployment.cli("db", "migrate", timeout=MIGRATE_TIMEOUT)
        phases["db migrate"] = time.monotonic() - started
        for name in COMPONENTS:
            deployment.start(name)
        port = int(deployment.env["AIRFLOW__API__PORT"])
        _wait_for("the api-server port", lambda: _port_open(port), STARTUP_TIMEOUT, deployment)
        _wait_for(
            f"{DAG_ID} to be parsed",
            lambda: deployment.query("SELECT 1 FROM serialized_dag WHERE dag_id = ?", DAG_ID),
            STARTUP_TIMEOUT,
            deployment,
        )
        phases["components up, DAG parsed"] = time.monotonic() - started
        deployment.cli("dags", "unpause", DAG_ID)
        deployment.cli("dags", "trigger", DAG_ID, "--run-id", "e2e")
        phases["unpaused and triggered"] = time.monotonic() - started

        seen_deferred: dict[str, float] = {}
        peers: set[str] = set()

        def progress() -> str | None:
            peers.update(_tcp_peers(deployment.session_pids()))
            states = dict(deployment.query("SELECT task_id, state FROM task_instance WHERE dag_id = ?", DAG_ID))
            tasks = sorted(emu.tasks.values(), key=lambda task: task["submit_mono"])
            for index, wait in enumerate(WAITS):
                if states.get(wait) == "deferred" and wait not in seen_deferred:
                    seen_deferred[wait] = time.monotonic() - started
                    # The sensor polled once, found the video in progress and deferred: now let it finish.
                    emu.complete_task(tasks[index]["id"])
            rows = deployment.query("SELECT state FROM dag_run WHERE dag_id = ? AND run_id = 'e2e'", DAG_ID)
            state = rows[0][0] if rows else None
            return state if state in ("success", "failed") else None

        run_state = _wait_for(f"the {DAG_ID} run to finish", progress, RUN_TIMEOUT, deployment)
        phases["run finished"] = time.monotonic() - started

        # The run and every task succeeded.
        assert run_state == "success"
        states = dict(deployment.query("SELECT task_id, state FROM task_instance WHERE run_id = 'e2e'"))
        assert states == dict.fromkeys(SUBMITS + WAITS, "success")

        # Each wait was seen deferred, resumed once (try 1) and logged its trigger's work.
        assert sorted(seen_deferred) == sorted(WAITS)
        xcoms = {
            task_id: json.loads(value)
            for task_id, value in deployment.query(
                "SELECT task_id, value FROM xcom WHERE run_id = 'e2e' AND key = 'return_value'"
            )
        }
        ids = [xcoms[task_id] for task_id in SUBMITS]
        for wait, mj_id in zip(WAITS, ids, strict=True):
            logs = sorted((deployment.home / "logs").rglob(f"*run_id=e2e/task_id={wait}/*"))
            text = "\n".join(path.read_text(errors="replace") for path in logs if path.is_file())
            assert "Pausing task as DEFERRED" in text or "DEFERRED" in text, f"{wait}: no deferral in its log"
            assert f"Midjourney task {mj_id} succeeded" in text

        # Wait summaries: four clips each, all on the emulator.
        for wait, mj_id in zip(WAITS, ids, strict=True):
            summary = xcoms[wait]
            assert summary["id"] == mj_id
            assert summary["status"] == "SUCCESS"
            assert summary["video_urls"] == [f"{emu.root_url}/media/{mj_id}/{i}.mp4" for i in range(4)]

        # Exactly three paid submissions, chained through taskId.
        assert emu.counters["submit_accepted"] == 3
        assert emu.counters["submit_rejected"] == 0
        submits = [request.json for request in emu.requests_to("submit")]
        assert len(submits) == 3
        assert [body.get("taskId") for body in submits] == [None, ids[0], ids[1]]
        assert [body.get("action") for body in submits] == [None, "extend", "extend"]
        assert [body.get("index") for body in submits] == [None, 0, 0]
        assert ids == sorted(emu.tasks, key=lambda task_id: emu.tasks[task_id]["submit_mono"])
        assert not emu.errors

        # Only loopback peers were ever seen on the components' sockets.
        assert peers, "no TCP connection of the Airflow processes was observed"
        assert all(_is_loopback(peer) for peer in peers), f"non-loopback peers: {peers}"
    except BaseException:
        print(deployment.diagnostics())
        raise
    finally:
        wall = time.monotonic() - started
        print(f"\n{DAG_ID} end-to-end wall time: {wall:.1f} s; phases (cumulative): ", end="")
        print(", ".join(f"{name} {seconds:.1f} s" for name, seconds in phases.items()))
