"""
Benchmark of deferred waits: per-task polling (one fetch per task per interval) against the shared batched poller.

In one asyncio process, as in a triggerer, N ``MidjourneyTaskTrigger`` runs wait concurrently for
videos that take T seconds, polling every I seconds; each (N, mode) runs in a fresh child process
so that its CPU time and peak memory are its own. The emulator serves in another process (its CPU is
not counted) and counts the requests it receives. Modes:

* ``per-task``: connection extra ``batch_polling=false`` — each trigger fetches its own task once per
  interval on its own HTTP session, the way the http provider's and dbt's triggers poll;
* ``batched``: the default — the triggers share one poller that sends one ``list-by-condition``
  request per ``list_chunk_size`` ids (100) per interval.

Printed per N and mode: requests the emulator received while the triggers waited; CPU seconds and peak
RSS of the waiting process; CPU per task-poll (a task-poll is one task's state delivered once: a fetch,
or one id of a list) and memory per waiting task (peak RSS over the baseline before the waits, / N);
the median and p95 delay from a task's completion in the emulator (its ``finishTime``) to its
trigger's event. Then the import overhead of ``airflow_provider_mjvideo.operators.video`` over
``airflow.sdk`` alone (fresh interpreters, median) and the parse time of ``example_dags/``.

    python benchmarks/polling.py                                  # N = 10 100 1000, T = 60 s, I = 10 s
    python benchmarks/polling.py --quick                          # N = 10 100, T = 3 s, I = 1 s
    python benchmarks/polling.py --n 200 --video-seconds 30 --interval 5 --json results.json

Linux only (``/proc/self/status`` for memory). The emulator's handler gets ``TCP_NODELAY`` here, as a
real server's would: without it every answer of the stdlib server stalls ~40 ms on a delayed ACK.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
API_KEY = "benchmark-key-0123456789"
CONN_ID = "mj_bench"
MODES = ("per-task", "batched")

# ---------------------------------------------------------------------------------------------- emulator process

_EMULATOR = """
import json, sys
from airflow_provider_mjvideo.testing import EmulatorConfig, MidjourneyEmulator

config = EmulatorConfig(api_key=sys.argv[1], video_duration=float(sys.argv[2]), max_recorded_requests=1_000_000)
emu = MidjourneyEmulator(config).start()
print("RESULT " + json.dumps({"url": emu.url}), flush=True)
for line in sys.stdin:
    command = line.strip()
    if command == "counts":
        counters = emu.counters
        listed = sum(len((r.json or {}).get("ids") or []) for r in emu.requests_to("list"))
        print("RESULT " + json.dumps({"fetch": counters["fetch"], "list": counters["list"], "list_ids": listed,
                          "submit": counters["submit"], "requests": counters["requests"]}), flush=True)
    elif command == "reset":
        emu.reset()
        print("RESULT " + json.dumps({"ok": True}), flush=True)
    elif command == "quit":
        break
emu.stop()
"""


class Emulator:
    """The emulator in a child process, driven over its stdin/stdout."""

    def __init__(self, video_seconds: float, env: dict[str, str]) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", _EMULATOR, API_KEY, str(video_seconds)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=env,
            cwd=REPO,
        )
        self.url = self._read()["url"]

    def _read(self) -> dict[str, Any]:
        assert self.proc.stdout is not None
        return _read_result(self.proc.stdout, "the emulator process")

    def command(self, name: str) -> dict[str, Any]:
        assert self.proc.stdin is not None
        self.proc.stdin.write(name + "\n")
        self.proc.stdin.flush()
        return self._read()

    def close(self) -> None:
        with contextlib.suppress(OSError, RuntimeError, ValueError):
            self.command("quit")
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


# ---------------------------------------------------------------------------------------------- waiting process

_WAITER = """
import asyncio, json, logging, sys, time
from datetime import datetime

def status(key):
    with open("/proc/self/status") as handle:
        for line in handle:
            if line.startswith(key):
                return int(line.split()[1]) * 1024
    return 0

from airflow_provider_mjvideo.triggers.video import MidjourneyTaskTrigger
import airflow_provider_mjvideo.hooks.midjourney  # imported by the first run() otherwise: not the waits' cost

logging.disable(logging.INFO)  # with AIRFLOW__LOGGING__LOGGING_LEVEL=WARNING: no progress lines
interval, conn_id = float(sys.argv[1]), sys.argv[2]
print("RESULT " + json.dumps({"ready": True}), flush=True)
ids = json.loads(sys.stdin.readline())

async def wait_one(task_id, end_time, arrivals):
    trigger = MidjourneyTaskTrigger(task_id, midjourney_conn_id=conn_id, poll_interval=interval, end_time=end_time)
    async for event in trigger.run():
        arrivals.append((time.time(), event.payload))
        return

async def main():
    arrivals = []
    end_time = time.time() + 3600
    await asyncio.gather(*(wait_one(task_id, end_time, arrivals) for task_id in ids))
    return arrivals

try:
    with open("/proc/self/clear_refs", "w") as handle:  # peak RSS from here on
        handle.write("5")
except OSError:
    pass
baseline = status("VmRSS:")
cpu0, wall0 = time.process_time(), time.monotonic()
arrivals = asyncio.run(main())
cpu, wall = time.process_time() - cpu0, time.monotonic() - wall0
delays, statuses = [], {}
for arrived, payload in arrivals:
    statuses[payload["status"]] = statuses.get(payload["status"], 0) + 1
    finished = (payload.get("task") or {}).get("finish_time")
    if payload["status"] == "success" and finished:
        delays.append(arrived - datetime.fromisoformat(finished).timestamp())
print("RESULT " + json.dumps({"cpu": cpu, "wall": wall, "baseline_rss": baseline, "peak_rss": status("VmHWM:"),
                  "delays": delays, "statuses": statuses}), flush=True)
"""


def _read_result(stream: Any, who: str) -> dict[str, Any]:
    """The next ``RESULT {json}`` line of a child's stdout (log lines in between are skipped)."""
    for line in stream:
        if line.startswith("RESULT "):
            return json.loads(line[len("RESULT ") :])
    raise RuntimeError(f"{who} ended without an answer")


def _connection(url: str, mode: str, chunk: int) -> str:
    extra: dict[str, Any] = {"auth_style": "bearer", "batch_polling": mode == "batched", "list_chunk_size": chunk}
    return json.dumps({"conn_type": "midjourney", "host": url, "password": API_KEY, "extra": extra})


def _submit(url: str, n: int) -> list[str]:
    import requests

    def one(i: int) -> str:
        session = sessions[i % len(sessions)]
        body = {"prompt": f"benchmark video {i}", "image": "https://cdn.example.com/frame.png", "motion": "low"}
        answer = session.post(f"{url}/mj/submit/video", json=body, timeout=30)
        answer.raise_for_status()
        return str(answer.json()["result"])

    sessions = []
    for _ in range(8):
        session = requests.Session()
        session.headers["Authorization"] = f"Bearer {API_KEY}"
        sessions.append(session)
    try:
        with ThreadPoolExecutor(max_workers=len(sessions)) as pool:
            return list(pool.map(one, range(n)))
    finally:
        for session in sessions:
            session.close()


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    position = min(len(ordered) - 1, max(0, round(fraction * (len(ordered) - 1))))
    return ordered[position]


def run_case(emulator: Emulator, env: dict[str, str], n: int, mode: str, interval: float, chunk: int) -> dict[str, Any]:
    """Run N waits in one mode in a fresh child process; return the measurements."""
    emulator.command("reset")
    child_env = {**env, f"AIRFLOW_CONN_{CONN_ID.upper()}": _connection(emulator.url, mode, chunk)}
    child = subprocess.Popen(
        [sys.executable, "-c", _WAITER, str(interval), CONN_ID],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=child_env,
        cwd=REPO,
    )
    assert child.stdin is not None
    assert child.stdout is not None
    who = f"the waiting process ({mode}, N={n})"
    try:
        _read_result(child.stdout, who)  # ready: imports done
        ids = _submit(emulator.url, n)
        before = emulator.command("counts")
        child.stdin.write(json.dumps(ids) + "\n")
        child.stdin.flush()
        result = _read_result(child.stdout, who)
        child.wait(timeout=60)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    after = emulator.command("counts")
    fetches = after["fetch"] - before["fetch"]
    lists = after["list"] - before["list"]
    task_polls = fetches + after["list_ids"] - before["list_ids"]
    delays = result["delays"]
    grown = max(0, result["peak_rss"] - result["baseline_rss"])
    return {
        "n": n,
        "mode": mode,
        "requests": fetches + lists,
        "fetch": fetches,
        "list": lists,
        "task_polls": task_polls,
        "cpu_s": result["cpu"],
        "wall_s": result["wall"],
        "peak_rss_mb": result["peak_rss"] / 2**20,
        "baseline_rss_mb": result["baseline_rss"] / 2**20,
        "cpu_per_task_poll_ms": 1000 * result["cpu"] / task_polls if task_polls else float("nan"),
        "kb_per_task": grown / 1024 / n,
        "delay_median_s": statistics.median(delays) if delays else float("nan"),
        "delay_p95_s": _percentile(delays, 0.95),
        "delay_max_s": max(delays) if delays else float("nan"),
        "statuses": result["statuses"],
    }


# ---------------------------------------------------------------------------------------------- import and parse

_IMPORT = """
import time
t0 = time.perf_counter()
import airflow.sdk
t1 = time.perf_counter()
import airflow_provider_mjvideo.operators.video
t2 = time.perf_counter()
print(t1 - t0, t2 - t1)
"""

_PARSE = """
import json, logging, sys, time
logging.disable(logging.WARNING)
t0 = time.perf_counter()
from airflow.dag_processing.dagbag import DagBag
t1 = time.perf_counter()
bag = DagBag(dag_folder=sys.argv[1], safe_mode=False)
t2 = time.perf_counter()
files = {stat.file.rsplit("/", 1)[-1]: stat.duration.total_seconds() for stat in bag.dagbag_stats}
print(json.dumps({"import_dagbag": t1 - t0, "fill": t2 - t1, "files": files, "dags": len(bag.dags),
                  "errors": len(bag.import_errors)}))
"""


def measure_import(env: dict[str, str], runs: int) -> dict[str, Any]:
    """Import time of airflow.sdk, then of the operator module on top of it, in fresh interpreters (median)."""
    sdk, provider = [], []
    for _ in range(runs):
        out = subprocess.run(
            [sys.executable, "-c", _IMPORT], env=env, capture_output=True, text=True, check=True, cwd=REPO
        )
        first, second = out.stdout.split()
        sdk.append(float(first))
        provider.append(float(second))
    importtime = subprocess.run(
        [
            sys.executable,
            "-X",
            "importtime",
            "-c",
            "import airflow.sdk; import airflow_provider_mjvideo.operators.video",
        ],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        cwd=REPO,
    )
    return {
        "sdk_ms": 1000 * statistics.median(sdk),
        "overhead_ms": 1000 * statistics.median(provider),
        "overhead_runs_ms": [round(1000 * v, 1) for v in provider],
        "top_new_imports": _top_new_imports(importtime.stderr),
    }


def _top_new_imports(report: str, count: int = 6) -> list[tuple[str, float]]:
    """Top-level packages first imported by the provider module (after airflow.sdk), by cumulative time."""
    rows = []
    for line in report.splitlines():
        if not line.startswith("import time:") or "|" not in line:
            continue
        _, cumulative, name = line[len("import time:") :].split("|", 2)
        if not cumulative.strip().isdigit():
            continue
        rows.append((int(cumulative), len(name) - len(name.lstrip()), name.strip()))
    start = next((i for i, row in enumerate(rows) if row[2] == "airflow.sdk" and row[1] == 1), None)
    if start is None:
        return []
    rows = rows[start + 1 :]
    # In -X importtime output a module is printed after its children; keep the direct children of the
    # provider modules that are third-party or core (not the provider itself).
    found: dict[str, float] = {}
    for cumulative, depth, name in rows:
        if name.startswith("airflow_provider_mjvideo"):
            continue
        if depth <= 5 and "." not in name and cumulative >= 1000:
            found[name] = max(found.get(name, 0.0), cumulative / 1000)
    return sorted(found.items(), key=lambda item: -item[1])[:count]


def measure_parse(env: dict[str, str], runs: int) -> dict[str, Any]:
    """DagBag fill time of example_dags/ in fresh interpreters (median), with per-file times of the median run."""
    results = []
    for _ in range(runs):
        out = subprocess.run(
            [sys.executable, "-c", _PARSE, str(REPO / "example_dags")],
            env=env,
            capture_output=True,
            text=True,
            check=True,
            cwd=REPO,
        )
        results.append(json.loads(out.stdout.strip().splitlines()[-1]))
    results.sort(key=lambda r: r["fill"])
    return results[len(results) // 2]


# ---------------------------------------------------------------------------------------------- report


def _raise_fd_limit() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = hard if hard != resource.RLIM_INFINITY else 65536
    if soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))


def _machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as handle:
            names = [line.split(":", 1)[1].strip() for line in handle if line.startswith("model name")]
        cpu = names[0] if names else cpu
    except OSError:
        pass
    return (
        f"{os.cpu_count()} CPUs ({cpu}), Python {platform.python_version()}, {platform.system()} {platform.release()}"
    )


def print_report(
    cases: list[dict[str, Any]], args: argparse.Namespace, imports: dict[str, Any] | None, parse: dict[str, Any] | None
) -> None:
    print()
    print(f"Machine: {_machine()}")
    print(
        f"Videos of {args.video_seconds:g} s, poll interval {args.interval:g} s, list chunk {args.chunk} ids; "
        "waiting process = one asyncio loop"
    )
    header = (
        f"{'N':>5} {'mode':<9} {'requests':>8} {'task-polls':>10} {'CPU s':>7} {'peak RSS MB':>11} "
        f"{'CPU/task-poll ms':>16} {'KB/task':>8} {'delay med s':>11} {'delay p95 s':>11} {'outcomes':<14}"
    )
    print(header)
    print("-" * len(header))
    for case in cases:
        outcomes = ",".join(f"{k}={v}" for k, v in sorted(case["statuses"].items()))
        print(
            f"{case['n']:>5} {case['mode']:<9} {case['requests']:>8} {case['task_polls']:>10} {case['cpu_s']:>7.2f} "
            f"{case['peak_rss_mb']:>11.1f} {case['cpu_per_task_poll_ms']:>16.3f} {case['kb_per_task']:>8.1f} "
            f"{case['delay_median_s']:>11.2f} {case['delay_p95_s']:>11.2f} {outcomes:<14}"
        )
    print()
    by_key = {(c["n"], c["mode"]): c for c in cases}
    for n in sorted({c["n"] for c in cases}):
        per_task, batched = by_key.get((n, "per-task")), by_key.get((n, "batched"))
        if per_task and batched and batched["requests"]:
            saved = per_task["peak_rss_mb"] - batched["peak_rss_mb"]
            print(
                f"N={n}: batched sends {per_task['requests'] / batched['requests']:.1f}x fewer requests, uses "
                f"{per_task['cpu_s'] / max(batched['cpu_s'], 1e-9):.1f}x less CPU and "
                f"{abs(saved):.1f} MB {'less' if saved >= 0 else 'more'} peak RSS than per-task"
            )
    print()
    biggest = max((c["n"] for c in cases), default=0)
    per_task, batched = by_key.get((biggest, "per-task")), by_key.get((biggest, "batched"))
    if per_task and batched:
        ratio = per_task["requests"] / max(1, batched["requests"])
        verdict = "met" if ratio >= 50 else "MISSED"
        print(f"Target: at N={biggest}, >= 50x fewer requests batched: {ratio:.1f}x -> {verdict}")
    if cases:
        worst_p95 = max(c["delay_p95_s"] for c in cases)
        bound = args.interval + 1
        print(
            f"Target: p95 completion-to-event delay <= I + 1 s = {bound:g} s: worst p95 {worst_p95:.2f} s -> "
            f"{'met' if worst_p95 <= bound else 'MISSED'}"
        )
    if imports:
        overhead = imports["overhead_ms"]
        print(
            f"Import overhead of airflow_provider_mjvideo.operators.video over airflow.sdk "
            f"({imports['sdk_ms']:.0f} ms alone): {overhead:.0f} ms median of {imports['overhead_runs_ms']} -> "
            f"{'met' if overhead <= 50 else 'MISSED'} (target <= 50 ms)"
        )
        if imports["top_new_imports"]:
            listed = ", ".join(f"{name} {ms:.0f} ms" for name, ms in imports["top_new_imports"])
            print(f"  biggest packages it imports that airflow.sdk does not (cumulative, -X importtime): {listed}")
    if parse:
        files = ", ".join(f"{name} {seconds * 1000:.0f} ms" for name, seconds in sorted(parse["files"].items()))
        print(
            f"Parse of example_dags/ (DagBag, fresh interpreter): {parse['fill'] * 1000:.0f} ms for {parse['dags']} "
            f"DAGs, {parse['errors']} import errors; per file: {files}"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--n", type=int, nargs="+", default=[10, 100, 1000], help="concurrent waits per run")
    parser.add_argument("--video-seconds", type=float, default=60.0, help="seconds each video takes (T)")
    parser.add_argument("--interval", type=float, default=10.0, help="poll interval of the triggers (I)")
    parser.add_argument("--chunk", type=int, default=100, help="list_chunk_size of the batched mode")
    parser.add_argument("--modes", nargs="+", choices=MODES, default=list(MODES))
    parser.add_argument("--quick", action="store_true", help="N = 10 100, T = 3 s, I = 1 s, fewer import runs")
    parser.add_argument("--import-runs", type=int, default=7, help="fresh interpreters for the import overhead")
    parser.add_argument("--skip-import-and-parse", action="store_true")
    parser.add_argument("--only-import-and-parse", action="store_true", help="no waits: import and parse times only")
    parser.add_argument("--json", type=Path, help="also write every measurement to this file")
    args = parser.parse_args(argv)
    if args.quick:
        args.n, args.video_seconds, args.interval, args.import_runs = [10, 100], 3.0, 1.0, 3

    _raise_fd_limit()
    home = Path(tempfile.mkdtemp(prefix="mjvideo-bench-home-"))
    env = {name: value for name, value in os.environ.items() if not name.startswith("AIRFLOW_CONN_")}
    env.update(
        AIRFLOW_HOME=str(home),
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
        AIRFLOW__CORE__DAGS_FOLDER=str(REPO / "example_dags"),
        # Progress lines (one per task and poll) would measure the log renderer, not the polling.
        AIRFLOW__LOGGING__LOGGING_LEVEL="WARNING",
        PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")])),
    )
    cases: list[dict[str, Any]] = []
    imports = parse = None
    emulator = Emulator(args.video_seconds, env)
    try:
        for n in [] if args.only_import_and_parse else args.n:
            for mode in args.modes:
                started = time.monotonic()
                case = run_case(emulator, env, n, mode, args.interval, args.chunk)
                cases.append(case)
                print(
                    f"  N={n:<5} {mode:<9} {case['requests']:>6} requests, CPU {case['cpu_s']:.2f} s, "
                    f"p95 delay {case['delay_p95_s']:.2f} s ({time.monotonic() - started:.0f} s)",
                    flush=True,
                )
    finally:
        emulator.close()
    try:
        if not args.skip_import_and_parse:
            imports = measure_import(env, args.import_runs)
            parse = measure_parse(env, 3)
    finally:
        shutil.rmtree(home, ignore_errors=True)
    print_report(cases, args, imports, parse)
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "args": {k: str(v) for k, v in vars(args).items()},
                    "cases": cases,
                    "imports": imports,
                    "parse": parse,
                },
                indent=2,
            )
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
