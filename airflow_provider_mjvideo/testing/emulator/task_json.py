"""The public task object (internal): what fetch, list-by-condition and notifyHook serve for a task."""

from __future__ import annotations

import json
from typing import Any

from airflow_provider_mjvideo.testing.emulator.config import EmulatorConfig
from airflow_provider_mjvideo.testing.emulator.flavors import flavor_of
from airflow_provider_mjvideo.testing.emulator.tasks import Task, timeline, urls_ready


def clip_urls(task: Task, media_root: str) -> list[tuple[str, str]]:
    """Return ``(clip, thumbnail)`` URLs of every clip of ``task`` on the fake CDN at ``media_root``."""
    return [
        (f"{media_root}/media/{task.id}/{i}.mp4", f"{media_root}/media/{task.id}/{i}.jpg")
        for i in range(task.batch_size)
    ]


def render(task: Task, now: float, cfg: EmulatorConfig, media_root: str) -> dict[str, Any]:
    """Build the public task object of ``task`` at ``now``.

    Args:
        task: The task.
        now: ``time.monotonic()`` of the answer.
        cfg: The live configuration (flavour, URL shape, time style).
        media_root: ``scheme://host:port`` of the fake CDN.

    Returns:
        The JSON-ready task object.
    """
    status, progress, start, finish, reason = timeline(task, now)
    unset = 0 if cfg.zero_times else None

    def wall_ms(mono: float | None) -> int | None:
        if mono is None:
            return unset
        return int((task.submit_wall + (mono - task.submit_mono)) * 1000)

    blank = task.forced_status is None and now - task.submit_mono < flavor_of(cfg).blank_status_seconds(cfg)
    if blank:
        status, progress = "", ""
    ready = urls_ready(task, now)
    clips = clip_urls(task, media_root) if ready else []
    properties: dict[str, Any] = {
        "mode": task.mode,
        "motion": task.motion,
        "batchSize": task.batch_size,
        "finalPrompt": task.prompt,
        "submitCode": task.submit_code,
    }
    if task.kind == "extend":
        properties.update(parentId=task.parent_id, index=task.index)
    buttons = []
    if ready:
        buttons = [
            {"customId": f"MJ::JOB::video_extend::{i + 1}::{task.id}", "label": f"Extend {i + 1}", "type": 2}
            for i in range(task.batch_size)
        ]
    obj: dict[str, Any] = {
        "id": task.id,
        "action": cfg.extend_action_name if task.kind == "extend" else "VIDEO",
        "status": status,
        "progress": progress,
        "prompt": task.prompt,
        "promptEn": task.prompt,
        "description": f"/video {task.prompt}",
        "state": task.state,
        "submitTime": wall_ms(task.submit_mono),
        "startTime": wall_ms(start),
        "finishTime": wall_ms(finish),
        "imageUrl": task.image or None,
        "failReason": reason if status == "FAILURE" else None,
        "buttons": buttons,
        "properties": properties,
        "botType": "MID_JOURNEY",
        "nonce": f"{task.id[-10:]}",
        "instanceId": "emulator-instance-1",
        "displays": {"submitTime": "", "finishTime": ""},
    }
    _place_clips(obj, cfg.url_shape, clips)
    return obj


def _place_clips(obj: dict[str, Any], shape: str, clips: list[tuple[str, str]]) -> None:
    """Write clip URLs into ``obj`` where the configured URL shape puts them."""
    if shape == "objects":
        obj["videoUrl"] = clips[0][0] if clips else None
        obj["videoUrls"] = [{"url": url, "thumbnail": thumb} for url, thumb in clips]
    elif shape == "strings":
        obj["videoUrls"] = [url for url, _thumb in clips]
    elif shape == "video_url_only":
        obj["videoUrl"] = clips[0][0] if clips else None
    elif shape == "video_urls_json_string":
        obj["video_urls"] = json.dumps([url for url, _thumb in clips]) if clips else None
    elif shape == "image_url_mp4" and clips:
        obj["imageUrl"] = clips[0][0]
