"""
Helpers for tests that run real Airflow processes (api-server, scheduler, dag-processor, triggerer).

Each deployment gets a fresh ``AIRFLOW_HOME`` with SQLite, a free loopback port, an environment cleaned
of the caller's ``AIRFLOW*`` and proxy variables, and every process in a session (process group) of its
own, so that :meth:`AirflowDeployment.stop` can end the processes and everything they forked.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

#: Seconds between SIGTERM and SIGKILL when stopping a deployment.
STOP_TIMEOUT = 30


def free_port() -> int:
    """A loopback TCP port that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def port_open(port: int) -> bool:
    """Whether something accepts TCP connections on 127.0.0.1:``port``."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(1)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def proc_stat(pid: int) -> tuple[str, int, int] | None:
    """(state, pgrp, session) of ``pid``, or None when it is gone."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = raw[raw.rindex(")") + 2 :].split()
    return fields[0], int(fields[2]), int(fields[3])


def live_pids_in_sessions(sessions: set[int]) -> list[int]:
    """Processes (not zombies) whose session is one of ``sessions``; task processes get their own group."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            stat = proc_stat(int(entry))
            if stat and stat[0] != "Z" and stat[2] in sessions:
                found.append(int(entry))
    return found


def tcp_peers(pids: list[int]) -> set[str]:
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


def is_loopback(addr: str) -> bool:
    """Whether ``addr`` (as :func:`tcp_peers` prints it) is a loopback or unspecified address."""
    return addr.startswith("127.") or addr in ("::1", "::") or addr == "0.0.0.0" or addr.startswith("::ffff:127.")


def stop_session(proc: subprocess.Popen[bytes], timeout: float = STOP_TIMEOUT) -> float:
    """
    SIGTERM ``proc``'s process group and wait until its session is empty; SIGKILL what is left after ``timeout``.

    :returns: the seconds it took.
    """
    started = time.monotonic()
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    while time.monotonic() - started < timeout and live_pids_in_sessions({proc.pid}):
        proc.poll()
        time.sleep(0.1)
    for pid in live_pids_in_sessions({proc.pid}):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=10)
    return time.monotonic() - started


def tail(path: Path, lines: int = 60) -> str:
    """The last ``lines`` lines of a text file, or the error reading it."""
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError as err:
        return f"<{err}>"


def base_env(home: Path, port: int, dags_folder: Path) -> dict[str, str]:
    """
    The environment of an isolated deployment: this interpreter's ``airflow``, a fresh home, SQLite,
    the api-server on 127.0.0.1:``port``, no proxies, and none of the caller's ``AIRFLOW*`` variables.
    """
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
            "AIRFLOW__CORE__DAGS_FOLDER": str(dags_folder),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{api}/execution/",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
            "AIRFLOW__API__HOST": "127.0.0.1",
            "AIRFLOW__API__PORT": str(port),
            "AIRFLOW__API__BASE_URL": api,
            "AIRFLOW__API__WORKERS": "1",
            "AIRFLOW__API__SECRET_KEY": "mjvideo-e2e-api-secret",
            "AIRFLOW__API_AUTH__JWT_SECRET": "mjvideo-e2e-jwt-secret-0123456789abcdef",
        }
    )
    return env


@dataclass
class AirflowDeployment:
    """A fresh Airflow home and its running components."""

    home: Path
    env: dict[str, str]
    out_dir: Path
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    #: The DAG whose task logs :meth:`diagnostics` includes.
    dag_id: str | None = None
    stop_timeout: float = STOP_TIMEOUT

    @property
    def db_path(self) -> Path:
        return self.home / "airflow.db"

    @property
    def api_url(self) -> str:
        return self.env["AIRFLOW__API__BASE_URL"]

    def run(
        self, *args: str, timeout: float = 120, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        """Run ``python -m airflow <args>`` in this deployment's environment (plus ``env``)."""
        return subprocess.run(
            [sys.executable, "-m", "airflow", *args],
            env={**self.env, **(env or {})},
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            cwd=self.home,
        )

    def cli(self, *args: str, timeout: float = 120) -> str:
        done = self.run(*args, timeout=timeout)
        assert done.returncode == 0, f"airflow {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}"
        return done.stdout

    def start(self, name: str, *args: str, command: str | None = None) -> None:
        """
        Start ``airflow <command> <args>`` in a new session, its output appended to ``out_dir/<name>.log``.

        :param name: the component's name here (``triggerer-a``); also the command unless ``command`` is given.
        """
        with (self.out_dir / f"{name}.log").open("ab") as out:
            self.procs[name] = subprocess.Popen(
                [sys.executable, "-m", "airflow", command or name, *args],
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

    def signal(self, name: str, sig: int) -> None:
        """Send ``sig`` to every process of component ``name`` (its process group: the component and its children)."""
        os.killpg(self.procs[name].pid, sig)

    def stop_component(self, name: str, timeout: float = STOP_TIMEOUT) -> float:
        """
        SIGTERM one component's process group and wait until its session is empty (SIGKILL after ``timeout``).

        :returns: the seconds the component took to stop.
        """
        return stop_session(self.procs.pop(name), timeout)

    def api_token(self) -> str:
        """A JWT for the REST API (the simple auth manager hands one out without credentials in all-admins mode)."""
        import requests

        response = requests.get(f"{self.api_url}/auth/token", timeout=30)
        response.raise_for_status()
        return str(response.json()["access_token"])

    def api(self, method: str, path: str, **kwargs: Any) -> Any:
        """Call the public REST API (``/api/v2`` + ``path``) as an admin; returns the ``requests`` response."""
        import requests

        headers = {"Authorization": f"Bearer {self.api_token()}", **kwargs.pop("headers", {})}
        return requests.request(method, f"{self.api_url}/api/v2{path}", headers=headers, timeout=60, **kwargs)

    def check_alive(self) -> None:
        for name, proc in self.procs.items():
            assert proc.poll() is None, (
                f"airflow {name} exited with {proc.returncode}:\n{tail(self.out_dir / f'{name}.log')}"
            )

    def session_pids(self) -> list[int]:
        return live_pids_in_sessions({proc.pid for proc in self.procs.values()})

    def stop(self) -> list[int]:
        """SIGTERM every process group, SIGKILL what is left after a timeout; return survivors (should be none)."""
        for proc in self.procs.values():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + self.stop_timeout
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
        parts = [f"--- {path.name} ---\n{tail(path)}" for path in sorted(self.out_dir.glob("*.log"))]
        if self.dag_id:
            for path in sorted((self.home / "logs").rglob("*.log")):
                if f"dag_id={self.dag_id}" in str(path):
                    parts.append(f"--- {path.relative_to(self.home)} ---\n{tail(path, 30)}")
        return "\n".join(parts)


def deferral_exits_seen(deployment: AirflowDeployment, dag_id: str, run_id: str, task_id: str) -> int:
    """
    How many of the run's ``task_id`` task instances the scheduler has seen leave their worker after deferring.

    A wait whose trigger fires before the scheduler processed its worker's exit is failed by Airflow when the stale
    "success" event arrives ("finished with state success, but the task instance's state attribute is running"):
    on a loaded 2-core machine that event can lag by seconds. Tests let videos finish only after.
    """
    text = (deployment.out_dir / "scheduler.log").read_text(errors="replace")
    pattern = rf"Received executor event with state success for task instance TaskInstanceKey\(dag_id='{dag_id}', "
    pattern += rf"task_id='{task_id}', run_id='{run_id}', try_number=\d+, map_index=(-?\d+)\)"
    return len(set(re.findall(pattern, text)))


def wait_for(what: str, check: Any, timeout: float, deployment: AirflowDeployment) -> Any:
    """Poll ``check()`` every half second until it is truthy; fail if a component died or time ran out."""
    deadline = time.monotonic() + timeout
    while True:
        deployment.check_alive()
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.5)
