"""
Benchmark of DownloadVideoOperator's download path: throughput and peak memory for large clips.

The local emulator (in this process) serves generated MP4 clips of the requested size as a stream;
each download runs in a fresh child process that reports how long ``save_task_clips`` took and its
peak resident memory over its own baseline (``VmHWM`` after resetting it through
``/proc/self/clear_refs``, Linux). A second run of the first scenario measures the reuse path (the
files are already there: hashed on disk, nothing downloaded).

    python benchmarks/download.py                      # 4 x 50 MB and 1 x 200 MB
    python benchmarks/download.py --scenario 2x500     # any COUNTxMB, repeatable
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

MB = 1 << 20

#: The measuring child process (a fresh interpreter per scenario).
PROBE = Path(__file__).resolve().parent / "download_probe.py"


def _expected_sha256(size: int, index: int) -> str:
    from airflow_provider_mjvideo.testing import media

    digest = hashlib.sha256()
    for piece in media.streamed_clip(size, chunk=4 * MB, index=index % media.CLIP_COUNT):
        digest.update(piece)
    return digest.hexdigest()


def _run_child(task_id: str, destination: str, env: dict[str, str]) -> dict[str, Any]:
    child = subprocess.run(
        [sys.executable, str(PROBE), task_id, destination],
        capture_output=True,
        text=True,
        env=env,
        timeout=1800,
        check=False,
    )
    if child.returncode != 0:
        raise SystemExit(f"download child failed:\n{child.stderr[-4000:]}")
    return json.loads(child.stdout.strip().splitlines()[-1])


def _scenario(text: str) -> tuple[int, int]:
    count, _, size = text.lower().partition("x")
    if not (count.isdigit() and size.isdigit()) or int(count) not in (1, 2, 4) or int(size) < 1:
        raise argparse.ArgumentTypeError(f"expected COUNTxMB with COUNT 1, 2 or 4, got {text!r}")
    return int(count), int(size)


def main(argv: list[str] | None = None) -> int:
    """Run the scenarios and print one line each."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scenario", action="append", type=_scenario, help="COUNTxMB, e.g. 4x50 (repeatable)")
    parser.add_argument("--keep", action="store_true", help="keep the downloaded files")
    args = parser.parse_args(argv)
    scenarios = args.scenario or [(4, 50), (1, 200)]

    work = Path(tempfile.mkdtemp(prefix="mjvideo-bench-"))
    os.environ.setdefault("AIRFLOW_HOME", str(work / "airflow-home"))
    os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")

    import requests

    from airflow_provider_mjvideo.testing import EmulatorConfig, MidjourneyEmulator

    print(
        f"Download benchmark: emulator on 127.0.0.1 streaming generated MP4s, file:// destination, 1 MiB chunks, "
        f"Python {platform.python_version()}, {os.cpu_count()} CPUs"
    )
    header = f"{'scenario':<34}{'files':>6}{'total MB':>10}{'seconds':>9}{'MB/s':>8}{'RSS before':>12}{'peak RSS':>10}"
    print(header + f"{'growth':>11}")
    first = True
    try:
        for count, size_mb in scenarios:
            size = size_mb * MB
            config = EmulatorConfig(api_key="bench-key-0123456789", video_duration=0.05, clip_size_bytes=size)
            with MidjourneyEmulator(config) as emulator:
                env = {**os.environ, "AIRFLOW_CONN_MIDJOURNEY_DEFAULT": emulator.connection_json()}
                answer = requests.post(
                    f"{emulator.url}/mj/submit/video",
                    json={
                        "prompt": "benchmark",
                        "image": "https://cdn.example.com/f.png",
                        "motion": "low",
                        "batchSize": count,
                    },
                    headers={"Authorization": f"Bearer {config.api_key}"},
                    timeout=10,
                )
                task_id = str(answer.json()["result"])
                emulator.complete_task(task_id)
                folder = work / f"{count}x{size_mb}"
                destination = f"file://{folder}/"
                runs = [("download", _run_child(task_id, destination, env))]
                media_after_first = emulator.count("media")
                if first:
                    runs.append(("re-run, files reused", _run_child(task_id, destination, env)))
                    if emulator.count("media") != media_after_first or runs[-1][1]["downloaded"]:
                        raise SystemExit("the re-run downloaded again")
                    first = False
                for clip in runs[0][1]["clips"]:
                    path = Path(clip["path"].removeprefix("file://"))
                    if clip["bytes"] != size or path.stat().st_size != size:
                        raise SystemExit(f"wrong size for {path}")
                    if clip["sha256"] != _expected_sha256(size, clip["index"]):
                        raise SystemExit(f"wrong sha256 for {path}")
                for label, report in runs:
                    total = count * size_mb
                    growth = (report["peak"] - report["baseline"]) / MB
                    name = f"{count} x {size_mb} MB" + (f" ({label})" if label != "download" else "")
                    print(
                        f"{name:<34}{count:>6}{total:>10}{report['seconds']:>9.2f}{total / report['seconds']:>8.0f}"
                        f"{report['baseline'] / MB:>9.1f} MB{report['peak'] / MB:>7.1f} MB{growth:>+8.2f} MB"
                    )
                if not args.keep:
                    shutil.rmtree(folder, ignore_errors=True)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    print("sha256 and sizes checked against the emulator's bytes; media requests of the re-run: 0")
    return 0


if __name__ == "__main__":
    sys.exit(main())
