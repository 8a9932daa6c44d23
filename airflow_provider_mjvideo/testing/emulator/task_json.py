"""The public task object (internal): what fetch, list-by-condition and notifyHook serve for a task."""

from __future__ import annotations

import json
from typing import Any

from airflow_provider_mjvideo.testing.emulator.buttons import buttons
from airflow_provider_mjvideo.testing.emulator.config import EmulatorConfig
from airflow_provider_mjvideo.testing.emulator.flavors import flavor_of
from airflow_provider_mjvideo.testing.emulator.tasks import Task, timeline, urls_ready


def clip_urls(task: Task, media_root: str) -> list[tuple[str, str]]:
    """Return ``(clip, thumbnail)`` URLs of every clip of ``task`` on the fake CDN at ``media_root``."""
    return [
        (f"{media_root}/media/{task.id}/{i}.mp4", f"{media_root}/media/{task.id}/{i}.jpg")
        for i in range(task.batch_size)
    ]


def image_urls(task: Task, media_root: str) -> tuple[str, list[str]]:
    """Return ``(imageUrl, single pictures)`` of an image task: a grid and its four, or one upscale."""
    singles = [f"{media_root}/media/{task.id}/{i}.png" for i in range(len(task.image_colours))]
    return (singles[0] if len(singles) == 1 else f"{media_root}/media/{task.id}/grid.png"), singles


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
    image = task.kind == "image"
    properties: dict[str, Any] = {"mode": task.mode}
    if not image:
        properties.update(motion=task.motion, batchSize=task.batch_size)
    properties.update(finalPrompt=task.prompt, submitCode=task.submit_code)
    if task.kind == "extend":
        properties.update(parentId=task.parent_id, index=task.index)
    if task.button is not None:
        properties.update(parentId=task.parent_id, customId=task.button)
    if image:
        description = f"/imagine {task.prompt}" if task.action == "IMAGINE" else f"{task.action} {task.button}"
    else:
        description = f"/video {task.prompt}"
    obj: dict[str, Any] = {
        "id": task.id,
        "action": cfg.extend_action_name if task.kind == "extend" else task.action,
        "status": status,
        "progress": progress,
        "prompt": task.prompt,
        "promptEn": task.prompt,
        "description": description,
        "state": task.state,
        "submitTime": wall_ms(task.submit_mono),
        "startTime": wall_ms(start),
        "finishTime": wall_ms(finish),
        "imageUrl": task.image or None,
        "failReason": reason if status == "FAILURE" else None,
        "buttons": buttons(task, video=cfg.video_route) if ready else [],
        "properties": properties,
        "botType": task.bot_type,
        "nonce": f"{task.id[-10:]}",
        "instanceId": "emulator-instance-1",
        "displays": {"submitTime": "", "finishTime": ""},
    }
    if image:
        url, singles = image_urls(task, media_root) if ready else (None, [])
        obj["imageUrl"] = url
        if flavor_of(cfg).lists_image_urls:
            # Thumbnails on the CDN take a size in the query; the emulator serves the picture itself.
            obj["imageUrls"] = [{"url": single, "thumbnail": f"{single}?width=32"} for single in singles]
    else:
        _place_clips(obj, cfg.url_shape, clip_urls(task, media_root) if ready else [])
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
