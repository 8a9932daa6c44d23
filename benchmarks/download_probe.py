"""
Save one finished task's clips in this (fresh) process and print what it cost, as one JSON line.

    python benchmarks/download_probe.py <mj_task_id> <destination URI>

Used by ``benchmarks/download.py`` and by the flat-memory test in ``tests/test_download.py``. The
connection comes from ``AIRFLOW_CONN_MIDJOURNEY_DEFAULT``. The HTTP stack and the filesystem are warmed
first, then the peak RSS (``VmHWM``) is reset to the current RSS, so ``peak - baseline`` is what the
download itself held. ``control`` is the peak after deliberately holding 64 MB, which proves the probe
sees memory that is really used.
"""

from __future__ import annotations

import json
import sys
import time


def _status(key: str) -> int:
    with open("/proc/self/status") as handle:
        for line in handle:
            if line.startswith(key):
                return int(line.split()[1]) * 1024
    raise KeyError(key)


def main(task_id: str, destination: str) -> None:
    """Download, measure, print the JSON report."""
    from airflow_provider_mjvideo.hooks.midjourney import MidjourneyHook
    from airflow_provider_mjvideo.storage import resolve_destination, save_task_clips

    hook = MidjourneyHook()
    hook.get_task(task_id)  # warm the HTTP stack and the connection
    resolve_destination(destination)  # and the filesystem
    try:
        with open("/proc/self/clear_refs", "w") as handle:
            handle.write("5")  # reset the peak (VmHWM) to the current RSS
        peak_reset = True
    except OSError:
        peak_reset = False
    baseline = _status("VmRSS:")
    started = time.perf_counter()
    saved = save_task_clips(hook, task_id, destination)
    elapsed = time.perf_counter() - started
    peak = _status("VmHWM:")
    ballast = b"x" * (64 << 20)  # control: the measurement must see 64 MB really held in memory
    control = _status("VmHWM:")
    del ballast
    report = {
        "baseline": baseline,
        "peak": peak,
        "control": control,
        "peak_reset": peak_reset,
        "seconds": elapsed,
        "downloaded": sum(clip.downloaded for clip in saved),
        "clips": [clip.xcom() for clip in saved],
    }
    print(json.dumps(report))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
