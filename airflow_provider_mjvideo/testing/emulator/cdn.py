"""The fake CDN (internal): ``GET``/``HEAD /media/{task}/{name}.{ext}`` with Range, forced statuses and cut-offs.

Video tasks have clips ``{i}.mp4`` and thumbnails ``{i}.jpg``; image tasks have ``{i}.png`` per picture
and, for a 2x2 grid, ``grid.png``.

The bytes come from :mod:`airflow_provider_mjvideo.testing.media`; this module only serves them.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator

from airflow_provider_mjvideo.testing import media
from airflow_provider_mjvideo.testing.emulator.config import EmulatorConfig
from airflow_provider_mjvideo.testing.emulator.httpd import Handler, Rec, Resp, text_resp
from airflow_provider_mjvideo.testing.emulator.tasks import Task, TaskBook

MEDIA_RE = re.compile(r"^/media/([^/]+)/(\d+|grid)\.(mp4|jpg|png)$")
"""Paths of the fake CDN: task id, clip or picture number (or ``grid``), extension."""
_RANGE_RE = re.compile(r"^bytes=(\d*)-(\d*)$")


def serve_media(
    handler: Handler,
    cfg: EmulatorConfig,
    rec: Rec,
    book: TaskBook,
    path: tuple[str, str, str],
    count_fault: Callable[[str], None],
) -> None:
    """Answer one fake-CDN request (no auth, as CDNs have none).

    Args:
        handler: The request's handler.
        cfg: The live configuration (forced statuses, clip size and type, cut-off).
        rec: The request's log entry; its status (and fault) are filled in here.
        book: The tasks, to check that the clip exists.
        path: ``(task id, number or "grid", extension)`` from the URL.
        count_fault: Called with ``"truncated"`` when the body is cut off on purpose.
    """
    task_id, name, ext = path
    forced = cfg.media_status.get(f"{task_id}/{name}", cfg.media_status.get("*"))
    if forced:
        _send(handler, rec, text_resp(int(forced)))
        return
    with book.lock:
        task = book.tasks.get(task_id)
    index = int(name) if name.isdigit() else -1
    data: bytes | None = None
    if ext == "png":
        data = _picture(task, name)
        missing = data is None
    else:
        missing = task is None or not 0 <= index < task.batch_size
    if missing:
        _send(handler, rec, text_resp(404))
        return
    clip = index % media.CLIP_COUNT
    if data is not None:
        content_type = "image/png"
        size = len(data)
    elif ext == "jpg":
        content_type = "image/jpeg"
        data = media.thumbnail_bytes(clip)
        size = len(data)
    else:
        content_type = cfg.media_content_type
        if cfg.clip_size_bytes is not None:
            size = max(0, int(cfg.clip_size_bytes))
        else:
            data = media.clip_bytes(clip)
            size = len(data)
    span = _byte_range(handler.headers.get("Range"), size)
    if span is None:
        _send(handler, rec, Resp(416, b"", content_type=None, headers={"Content-Range": f"bytes */{size}"}))
        return
    start, stop, status = span
    length = stop - start
    handler.send_response(status)
    handler.send_header("Content-Type", content_type)
    handler.send_header("Content-Length", str(length))
    handler.send_header("Accept-Ranges", "bytes")
    handler.send_header("Cache-Control", "public, max-age=86400")
    handler.send_header("Access-Control-Allow-Origin", "*")
    handler.send_header("ETag", f'"{task_id}-{name}-{size}"')
    if status == 206:
        handler.send_header("Content-Range", f"bytes {start}-{stop - 1}/{size}")
    handler.end_headers()
    rec.status = status
    if handler.command == "HEAD":
        return
    chunks: Iterable[bytes] = (
        (data[start:stop],) if data is not None else media.streamed_clip(size, start=start, stop=stop, index=clip)
    )
    limit = cfg.media_drop_after_bytes
    if limit is not None and limit < length:
        rec.fault = "truncated"
        count_fault("truncated")
        for piece in _truncate(chunks, max(0, limit)):
            handler.wfile.write(piece)
        handler.drop()
        return
    for piece in chunks:
        handler.wfile.write(piece)


def _picture(task: Task | None, name: str) -> bytes | None:
    """Return the PNG ``name`` of an image task, or None when the task has no such picture."""
    colours = task.image_colours if task is not None else []
    if name == "grid" and len(colours) == 4:
        return media.grid_png((colours[0], colours[1], colours[2], colours[3]))
    if name.isdigit() and int(name) < len(colours):
        return media.image_png(colours[int(name)])
    return None


def _send(handler: Handler, rec: Rec, resp: Resp) -> None:
    rec.status = resp.status
    handler.send(resp)


def _byte_range(header: str | None, size: int) -> tuple[int, int, int] | None:
    """Return ``(start, stop, status)`` for a ``Range`` header over ``size`` bytes; None when unsatisfiable.

    A missing or unparsable header means the whole body with status 200.
    """
    match = _RANGE_RE.match(header.strip()) if header else None
    if not (match and (match.group(1) or match.group(2))):
        return 0, size, 200
    first, last = match.group(1), match.group(2)
    if first:
        start = int(first)
        stop = min(size, int(last) + 1) if last else size
    else:
        start, stop = max(0, size - int(last)), size
    if start >= size or stop <= start:
        return None
    return start, stop, 206


def _truncate(chunks: Iterable[bytes], limit: int) -> Iterator[bytes]:
    sent = 0
    for piece in chunks:
        if sent >= limit:
            return
        piece = piece[: limit - sent]
        sent += len(piece)
        yield piece
