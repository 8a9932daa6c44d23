"""
The servers of a production-shaped deployment, which tests start and stop themselves.

* :class:`PostgresCluster`: a throw-away PostgreSQL cluster (``initdb`` in a temporary folder, run as an
  unprivileged user when the tests run as root, since postgres refuses root), listening on a free port of
  127.0.0.1 only, with the durability settings off (nothing here outlives the test).
* :class:`RedisServer`: Redis on a free port of 127.0.0.1, without persistence, as Celery's broker.
* :class:`EmulatorProcess`: the Midjourney emulator in a process (and session) of its own, driven through a
  multiprocessing manager: the test reads its counters and request log and finishes its videos as if it were
  in-process, and can take its API away and bring it back on the same port with its tasks.
Each server runs in a session of its own and is stopped by its process group.
"""

from __future__ import annotations

import contextlib
import glob
import importlib.util
import multiprocessing
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from multiprocessing.managers import BaseManager
from pathlib import Path
from typing import Any

from airflow_provider_mjvideo.testing import EmulatorConfig, MidjourneyEmulator
from helpers import connection_json
from helpers.airflow_processes import free_port, live_pids_in_sessions, port_open, stop_session, tail

#: The environment variable that turns a missing PostgreSQL, Redis or Celery provider into a failure.
REQUIRE_ENV = "MJVIDEO_REQUIRE_PRODUCTION"
#: The unprivileged account that runs PostgreSQL when the tests run as root.
POSTGRES_USER = "nobody"
START_TIMEOUT = 60


def _binary(name: str) -> str | None:
    """``name`` on PATH, else in Debian's versioned PostgreSQL folder."""
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return candidates[-1] if candidates else None


def missing_parts() -> list[str]:
    """What this machine lacks for the production deployment (empty when everything is there)."""
    missing = [name for name in ("initdb", "postgres") if _binary(name) is None]
    if shutil.which("redis-server") is None:
        missing.append("redis-server")
    for module, package in (
        ("airflow.providers.celery", "apache-airflow-providers-celery"),
        ("psycopg2", "psycopg2-binary"),
        ("asyncpg", "asyncpg"),
    ):
        with contextlib.suppress(ModuleNotFoundError):
            if importlib.util.find_spec(module) is not None:
                continue
        missing.append(package)
    return missing


@dataclass
class PostgresCluster:
    """A throw-away PostgreSQL cluster on 127.0.0.1 with one database, ``airflow``, owned by role ``airflow``."""

    log_path: Path
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None
    _root: str | None = None

    @property
    def sqlalchemy_url(self) -> str:
        return f"postgresql+psycopg2://airflow@127.0.0.1:{self.port}/airflow"

    @property
    def celery_result_backend(self) -> str:
        return f"db+postgresql+psycopg2://airflow@127.0.0.1:{self.port}/airflow"

    def _as_owner(self) -> dict[str, Any]:
        # postgres refuses to run as root: as root, initdb and the server run as an unprivileged account.
        return {"user": POSTGRES_USER, "group": pwd.getpwnam(POSTGRES_USER).pw_gid} if os.geteuid() == 0 else {}

    def start(self) -> PostgresCluster:
        # A folder of its own under the system temp dir: pytest's tmp_path is not readable by another account.
        self._root = tempfile.mkdtemp(prefix="mjvideo-postgres-")
        data = Path(self._root) / "data"
        if os.geteuid() == 0:
            os.chown(self._root, pwd.getpwnam(POSTGRES_USER).pw_uid, -1)
        initdb = subprocess.run(
            [_binary("initdb"), "-D", str(data), "-U", "airflow", "-A", "trust", "-E", "UTF8", "--no-sync"],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
            cwd=self._root,
            **self._as_owner(),
        )
        assert initdb.returncode == 0, f"initdb failed:\n{initdb.stdout}\n{initdb.stderr}"
        with self.log_path.open("ab") as out:
            self.proc = subprocess.Popen(
                [
                    str(_binary("postgres")),
                    "-D",
                    str(data),
                    "-p",
                    str(self.port),
                    "-c",
                    "listen_addresses=127.0.0.1",
                    "-c",
                    "unix_socket_directories=",
                    "-c",
                    "max_connections=400",
                    "-c",
                    "fsync=off",
                    "-c",
                    "synchronous_commit=off",
                    "-c",
                    "full_page_writes=off",
                ],
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                cwd=self._root,
                start_new_session=True,
                **self._as_owner(),
            )
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            assert self.proc.poll() is None, f"postgres exited:\n{tail(self.log_path)}"
            try:
                self.execute("CREATE DATABASE airflow", database="postgres")
                return self
            except Exception:  # not accepting connections yet
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.3)

    def connect(self, database: str = "airflow") -> Any:
        import psycopg2

        return psycopg2.connect(host="127.0.0.1", port=self.port, user="airflow", dbname=database, connect_timeout=5)

    def execute(self, sql: str, *params: Any, database: str = "airflow") -> None:
        conn = self.connect(database)
        try:
            conn.autocommit = True
            with conn.cursor() as cur:
                cur.execute(sql, params or None)
        finally:
            conn.close()

    def query(self, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        """Run a read-only query on the ``airflow`` database (``%s`` placeholders); [] while a table is missing."""
        import psycopg2

        conn = self.connect()
        try:
            with conn.cursor() as cur:
                try:
                    cur.execute(sql, params or None)
                except psycopg2.errors.UndefinedTable:
                    return []
                return list(cur.fetchall())
        finally:
            conn.close()

    def stop(self) -> None:
        if self.proc is not None:
            stop_session(self.proc, 20)
            self.proc = None
        if self._root is not None:
            shutil.rmtree(self._root, ignore_errors=True)
            self._root = None


@dataclass
class RedisServer:
    """Redis on 127.0.0.1 without persistence."""

    log_path: Path
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, workdir: Path) -> RedisServer:
        with self.log_path.open("ab") as out:
            self.proc = subprocess.Popen(
                [
                    str(shutil.which("redis-server")),
                    "--bind",
                    "127.0.0.1",
                    "--port",
                    str(self.port),
                    "--save",
                    "",
                    "--appendonly",
                    "no",
                    "--daemonize",
                    "no",
                    "--dir",
                    str(workdir),
                ],
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        deadline = time.monotonic() + START_TIMEOUT
        while not port_open(self.port):
            assert self.proc.poll() is None, f"redis-server exited:\n{tail(self.log_path)}"
            assert time.monotonic() < deadline, "redis-server did not start"
            time.sleep(0.1)
        return self

    def stop(self) -> None:
        if self.proc is not None:
            stop_session(self.proc, 20)
            self.proc = None


class EmulatorControl:
    """
    What a test does with an emulator in another process (the object lives there; the test holds a proxy).

    Only plain values cross the process boundary: counters, ``(route, path, status, monotonic time, json)`` rows.
    """

    def __init__(self, **config: Any) -> None:
        self._emu = MidjourneyEmulator(EmulatorConfig(**config)).start()

    def url(self) -> str:
        return self._emu.url

    def pid(self) -> int:
        """The emulator's process (the test kills its session by it)."""
        return os.getpid()

    def connection_json(self, **extra: Any) -> str:
        """The ``AIRFLOW_CONN_*`` JSON for this emulator (:func:`helpers.connection_json`, plus ``extra``)."""
        return connection_json(self._emu, **extra)

    def set_duration(self, seconds: float) -> None:
        """Seconds from submit to SUCCESS for videos submitted from now on."""
        self._emu.config.video_duration = seconds

    def counters(self) -> dict[str, Any]:
        return self._emu.counters

    def requests(self, route: str | None = None) -> list[tuple[str, str, int, float, Any]]:
        return [
            (rec.route, rec.path, rec.status, rec.time, rec.json)
            for rec in self._emu.requests
            if route is None or rec.route == route
        ]

    def errors(self) -> list[str]:
        return self._emu.errors

    def tasks(self) -> dict[str, tuple[str, str]]:
        """Task id → (status, the submit's ``state`` field, which names the DAG run and task)."""
        return {task_id: (task["status"], str(task["state"])) for task_id, task in self._emu.tasks.items()}

    def complete(self, task_ids: list[str]) -> None:
        for task_id in task_ids:
            self._emu.complete_task(task_id)

    def stop_serving(self) -> None:
        """Close the listening socket and every connection: the API is gone (the tasks are kept)."""
        self._emu.stop()

    def start_serving(self) -> None:
        """Serve again on the same port, with the same tasks, log and counters."""
        self._emu.start()


class _EmulatorManager(BaseManager):
    pass


_EmulatorManager.register("Emulator", EmulatorControl)


def _own_session() -> None:
    os.setsid()


class EmulatorProcess:
    """The emulator in a process and session of its own; :attr:`control` is its :class:`EmulatorControl`."""

    def __init__(self, **config: Any) -> None:
        self._manager = _EmulatorManager(ctx=multiprocessing.get_context("spawn"))
        self._manager.start(initializer=_own_session)
        self.control: EmulatorControl = self._manager.Emulator(**config)  # type: ignore[attr-defined]

    def connection_json(self, **extra: Any) -> str:
        return self.control.connection_json(**extra)

    def stop(self) -> None:
        pid = self.control.pid()
        with contextlib.suppress(Exception):
            self._manager.shutdown()
        for pid_left in live_pids_in_sessions({pid}):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid_left, signal.SIGKILL)
