"""
Publish: runs whenever clips are saved, checks them, and writes a summary next to them.

Scheduled on the ``mjvideo_clips`` asset, which ``mjvideo_chain``'s downloads update. Each asset event's
extra lists the clips one download saved (task id, prompt, and per clip ``index``, ``path``, ``bytes``,
``sha256``), so this DAG needs no XCom of another DAG: it reads ``triggering_asset_events``, recomputes
every clip's sha256 from storage (a clip changed since it was saved fails the run), and writes
``published/<run id>.json`` into each clips folder. Several downloads that finish close together may
trigger one run; each run lists exactly the clips of its events. Events of downloads that finish at the
same moment may wait for the asset's next event before a run lists them (apache/airflow#54659, seen on
Airflow 3.3.2 with SQLite): posting an event for the asset (UI or REST API) lets them through.

Works on any storage the downloads wrote to (file://, s3://…), through ``ObjectStoragePath``.
"""

from __future__ import annotations

import json
from collections import defaultdict
from datetime import datetime, timezone
from typing import Any

import pendulum
from airflow.sdk import DAG, Asset, task

#: The asset mjvideo_chain's downloads update (assets match by name).
CLIPS = Asset("mjvideo_clips")
#: The folder, inside each clips folder, of the per-run summaries.
PUBLISHED_DIR = "published"

with DAG(
    dag_id="mjvideo_publish",
    description="Check and list the clips each Midjourney download saved",
    schedule=[CLIPS],
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    tags=["midjourney", "example"],
) as dag:

    @task
    def publish(triggering_asset_events: Any = None, run_id: str | None = None) -> list[str]:
        """Verify the clips of the triggering events and write one summary per clips folder; return their URIs."""
        from airflow.providers.common.compat.sdk import AirflowFailException

        from airflow_provider_mjvideo.assets import clips_from_events
        from airflow_provider_mjvideo.storage import (
            ensure_directory,
            hash_file,
            resolve_destination,
            write_bytes_atomic,
        )

        clips = clips_from_events((triggering_asset_events or {}).values())
        folders: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for clip in clips:
            path = resolve_destination(clip["path"])
            size, sha256 = hash_file(path)
            if (size, sha256) != (clip["bytes"], clip["sha256"]):
                raise AirflowFailException(
                    f"{clip['path']} changed since it was saved: {size} bytes, sha256 {sha256}; "
                    f"the asset event says {clip['bytes']} bytes, sha256 {clip['sha256']}"
                )
            folders[str(path.parent)].append({**clip, "verified": True})
        name = f"{str(run_id).replace(':', '-').replace('+', '-')}.json"
        written = []
        for folder, folder_clips in sorted(folders.items()):
            target = resolve_destination(folder) / PUBLISHED_DIR / name
            ensure_directory(target.parent)
            summary = {
                "published_at": datetime.now(timezone.utc).replace(microsecond=0).isoformat(),
                "run_id": run_id,
                "clips": folder_clips,
            }
            write_bytes_atomic(target, json.dumps(summary, indent=2).encode())
            written.append(str(target))
        print(f"Published {len(clips)} clip(s) into {len(written)} folder(s): {', '.join(written) or 'none'}")
        return written

    publish()
