"""
A production-shaped Airflow deployment (PostgreSQL, CeleryExecutor, two workers, two triggerers) and what tests
read from it: Airflow's database, the emulator's log, the Celery workers' and the scheduler's output.
"""

from __future__ import annotations

import contextlib
import math
import os
import re
import signal
import subprocess
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from helpers.airflow_processes import AirflowDeployment, deferral_exits_seen, live_pids_in_sessions, proc_stat, wait_for
from helpers.servers import EmulatorControl, EmulatorProcess, PostgresCluster

WORKERS = ("worker-a", "worker-b")
TRIGGERERS = ("triggerer-a", "triggerer-b")
STARTUP_TIMEOUT = 240
PHASE_TIMEOUT = 420


@dataclass
class ProductionDeployment(AirflowDeployment):
    """An Airflow deployment whose metadata database is a :class:`PostgresCluster`."""

    postgres: PostgresCluster | None = None

    def query(self, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        assert self.postgres is not None
        return self.postgres.query(sql, *params)

    def kill_session(self, name: str) -> int:
        """SIGKILL every process of component ``name``'s session (tasks it forked included): a lost machine."""
        proc = self.procs.pop(name)
        pids = live_pids_in_sessions({proc.pid})
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=10)
        return len(pids)


class Production:
    """The running deployment and what the scenarios read from it."""

    def __init__(self, deployment: ProductionDeployment, emulator: EmulatorProcess) -> None:
        self.airflow = deployment
        self.emulator = emulator
        self.emu: EmulatorControl = emulator.control
        #: Triggerer job id → component name (a restarted triggerer has a new job).
        self.triggerers: dict[int, str] = {}

    def start_triggerer(self, name: str) -> int:
        """Start triggerer ``name`` and return its job id (triggerers start one at a time to tell their jobs apart)."""
        known = set(self.triggerer_jobs())
        self.airflow.start(name, "--skip-serve-logs", command="triggerer")
        (job,) = self.wait(f"{name}'s job", lambda: set(self.triggerer_jobs()) - known, STARTUP_TIMEOUT)
        self.triggerers = {job_id: n for job_id, n in self.triggerers.items() if n != name} | {job: name}
        return job

    def triggerer_names(self) -> dict[int, str]:
        """The running triggerers' jobs and names."""
        running = set(self.triggerer_jobs())
        return {job: name for job, name in self.triggerers.items() if job in running}

    def airflow_logged(self, text: str) -> bool:
        """Whether any component's output or task/trigger log holds ``text``."""
        files = [*self.airflow.out_dir.glob("*.log"), *(self.airflow.home / "logs").rglob("*")]
        return any(text in path.read_text(errors="replace") for path in files if path.is_file())

    # -- Airflow's database -------------------------------------------------------------------------------

    def triggerer_jobs(self) -> list[int]:
        rows = self.airflow.query(
            "SELECT id FROM job WHERE job_type = 'TriggererJob' AND state = 'running' AND "
            "latest_heartbeat > now() - interval '10 seconds' ORDER BY id"
        )
        return [row[0] for row in rows]

    def held(self, dag_id: str, run_id: str) -> dict[int | None, list[int]]:
        """Map indexes of the run's deferred task instances, by the triggerer job that holds their trigger."""
        rows = self.airflow.query(
            "SELECT t.triggerer_id, ti.map_index FROM task_instance ti JOIN trigger t ON t.id = ti.trigger_id "
            "WHERE ti.dag_id = %s AND ti.run_id = %s AND ti.state = 'deferred'",
            dag_id,
            run_id,
        )
        out: dict[int | None, list[int]] = defaultdict(list)
        for triggerer, map_index in rows:
            out[triggerer].append(map_index)
        return dict(out)

    def states(self, dag_id: str, run_id: str) -> dict[int, tuple[str | None, int]]:
        rows = self.airflow.query(
            "SELECT map_index, state, try_number FROM task_instance WHERE dag_id = %s AND run_id = %s",
            dag_id,
            run_id,
        )
        return {map_index: (state, tries) for map_index, state, tries in rows}

    def run_state(self, dag_id: str, run_id: str) -> str | None:
        rows = self.airflow.query("SELECT state FROM dag_run WHERE dag_id = %s AND run_id = %s", dag_id, run_id)
        return rows[0][0] if rows else None

    def failed_tries(self, dag_id: str, run_id: str) -> int:
        """Tries that ended failed: task instances failed now, plus failed earlier tries in the history table."""
        now = self.airflow.query(
            "SELECT COUNT(*) FROM task_instance WHERE dag_id = %s AND run_id = %s AND state IN ('failed', "
            "'up_for_retry')",
            dag_id,
            run_id,
        )
        before = self.airflow.query(
            "SELECT COUNT(*) FROM task_instance_history WHERE dag_id = %s AND run_id = %s AND state IN ('failed', "
            "'up_for_retry')",
            dag_id,
            run_id,
        )
        return int(now[0][0]) + int(before[0][0] if before else 0)

    # -- the emulator ---------------------------------------------------------------------------------------

    def videos(self, dag_id: str, run_id: str) -> dict[int, str]:
        """Map index → Midjourney task id of every video the run submitted (its ``state`` names the run)."""
        found: dict[int, str] = {}
        pattern = re.compile(rf"^airflow:{re.escape(dag_id)}/{re.escape(run_id)}/video(?:\[(\d+)\])?$")
        for task_id, (_status, state) in self.emu.tasks().items():
            match = pattern.match(state)
            if match:
                index = int(match.group(1) or -1)
                assert index not in found, f"two videos were submitted for {dag_id}/{run_id} map index {index}"
                found[index] = task_id
        return found

    def accepted(self, dag_id: str, run_id: str) -> int:
        """Accepted video submits of the run (every accepted submit creates one emulator task)."""
        prefix = f"airflow:{dag_id}/{run_id}/"
        return sum(state.startswith(prefix) for _status, state in self.emu.tasks().values())

    def cancels(self) -> list[str]:
        return [path for _route, path, _status, _at, _body in self.emu.requests("cancel")]

    # -- running DAGs ---------------------------------------------------------------------------------------

    def trigger(self, dag_id: str, run_id: str) -> None:
        self.airflow.cli("dags", "trigger", dag_id, "--run-id", run_id)

    def wait(self, what: str, check: Callable[[], Any], timeout: float = PHASE_TIMEOUT) -> Any:
        return wait_for(what, check, timeout, self.airflow)

    def wait_deferred(self, dag_id: str, run_id: str, count: int) -> dict[int | None, list[int]]:
        """Wait until ``count`` task instances of the run are deferred, each trigger held by a running triggerer."""

        def all_held() -> dict[int | None, list[int]] | None:
            held = self.held(dag_id, run_id)
            ok = sum(map(len, held.values())) == count and None not in held
            return held if ok and deferral_exits_seen(self.airflow, dag_id, run_id, "video") >= count else None

        return self.wait(f"{count} deferred waits of {dag_id}/{run_id}, each held by a triggerer", all_held)

    def finish(self, dag_id: str, run_id: str, timeout: float = PHASE_TIMEOUT) -> str:
        return self.wait(
            f"{dag_id}/{run_id} to finish",
            lambda: state if (state := self.run_state(dag_id, run_id)) in ("success", "failed") else None,
            timeout,
        )


def worker_of(deployment: ProductionDeployment, pid: int) -> str | None:
    """The Celery worker whose session holds process ``pid``."""
    stat = proc_stat(pid)
    if stat is None:
        return None
    return next((name for name in WORKERS if name in deployment.procs and deployment.procs[name].pid == stat[2]), None)


def slot_seconds_per_video(deployment: ProductionDeployment, dag_id: str, run_id: str) -> list[float]:
    """
    Worker-slot seconds of each video: the runtimes Celery logged for every execution of its task instance.

    The scheduler logs the Celery task id it sent for each execution ("Setting external_executor_id for
    <TaskInstance ...> to <id>": the first one and the resume after the deferral); the workers log each Celery
    task's runtime ("succeeded in 2.31s").
    """
    scheduler = (deployment.out_dir / "scheduler.log").read_text(errors="replace")
    executions: dict[int, set[str]] = defaultdict(set)
    sent = re.compile(
        rf"Setting external_executor_id for <TaskInstance: {re.escape(dag_id)}\.video {re.escape(run_id)} "
        r"map_index=(\d+) \[\w+\][^>]*> to ([0-9a-f-]{36})"
    )
    for map_index, celery_id in sent.findall(scheduler):
        executions[int(map_index)].add(celery_id)
    runtimes: dict[str, float] = {}
    for name in WORKERS:
        text = (deployment.out_dir / f"{name}.log").read_text(errors="replace")
        for celery_id, seconds in re.findall(r"\[([0-9a-f-]{36})\] succeeded in ([0-9.]+)s", text):
            runtimes[celery_id] = float(seconds)
    return [sum(runtimes[cid] for cid in ids if cid in runtimes) for _index, ids in sorted(executions.items())]


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, math.ceil(share * len(ordered)) - 1)]


def start_worker(deployment: ProductionDeployment, name: str) -> None:
    deployment.start(
        name, "worker", "--celery-hostname", f"{name}@%h", "--concurrency", "8", "--skip-serve-logs", command="celery"
    )
