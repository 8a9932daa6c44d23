"""
``index.html``: a self-contained gallery of a destination folder: every clip in a ``<video controls>``, every
picture (a grid, an upscaled image…) in an ``<img>``, grouped per task, the tasks in the order they were saved.
"""

from __future__ import annotations

import html
from collections.abc import Mapping
from typing import Any, Final

from airflow_provider_mjvideo.storage.downloader import human_size
from airflow_provider_mjvideo.storage.manifest import MANIFEST_NAME, entry_kind, now_iso

GALLERY_NAME: Final = "index.html"

_GALLERY_STYLE = """
body{font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;background:#101014;color:#ececf1}
header{padding:20px 28px 6px}h1{font-size:22px;margin:0 0 4px}header p{margin:0;color:#a0a0ad}
section{padding:14px 28px 8px}h2{font-size:15px;font-weight:600;margin:0 0 10px;color:#c9c9d4}
h2 code{font:13px ui-monospace,Menlo,Consolas,monospace;color:#a0a0ad}
.media{display:grid;grid-template-columns:repeat(auto-fill,minmax(280px,1fr));gap:20px}
figure{margin:0;background:#1b1b22;border:1px solid #2c2c36;border-radius:10px;overflow:hidden}
video{display:block;width:100%;aspect-ratio:16/9;background:#000}
img{display:block;width:100%;height:auto;background:#000}
figcaption{padding:10px 12px 12px}.prompt{font-weight:600;margin-bottom:6px;overflow-wrap:anywhere}
dl{display:grid;grid-template-columns:auto 1fr;gap:2px 10px;margin:0;font-size:13px;color:#b8b8c4}
dt{color:#7d7d8a}dd{margin:0;overflow-wrap:anywhere;font-family:ui-monospace,Menlo,Consolas,monospace}
a{color:#b69cff}
""".strip()


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'s' if count != 1 else ''}"


def _figure(entry: Mapping[str, Any]) -> str:
    name = html.escape(str(entry.get("file") or ""), quote=True)
    prompt = html.escape(str(entry.get("prompt") or "(no prompt recorded)"))
    size = int(entry.get("bytes") or 0)
    sha = html.escape(str(entry.get("sha256") or "")[:16])
    if entry_kind(entry) == "image":
        media = f'<a href="{name}"><img src="{name}" alt="picture {int(entry.get("index") or 0)}" loading="lazy"></a>'
        label = "picture"
    else:
        media = f'<video controls preload="auto" src="{name}#t=0.1" title="{name}"></video>'
        label = "clip"
    return f"""<figure>
  {media}
  <figcaption>
    <div class="prompt">{prompt}</div>
    <dl>
      <dt>task</dt><dd>{html.escape(str(entry.get("mj_task_id")))}</dd>
      <dt>{label}</dt><dd>{int(entry.get("index") or 0)}</dd>
      <dt>size</dt><dd>{html.escape(human_size(size))} ({size:,} bytes)</dd>
      <dt>file</dt><dd><a href="{name}">{name}</a></dd>
      <dt>sha256</dt><dd>{sha}…</dd>
    </dl>
  </figcaption>
</figure>"""


def group_by_task(entries: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """
    The entries grouped per task, each group in the entries' order, the groups in the order their tasks were
    first saved (the earliest ``saved_at`` of a group; entries without one first; then by task id, which
    Midjourney servers hand out in increasing order).

    :param entries: the manifest's entries.
    """
    groups: dict[str, list[dict[str, Any]]] = {}
    for entry in entries:
        groups.setdefault(str(entry.get("mj_task_id")), []).append(entry)

    def first_saved(item: tuple[str, list[dict[str, Any]]]) -> tuple[str, int, str]:
        task_id, group = item
        saved = min(str(entry.get("saved_at") or "") for entry in group)
        return saved, len(task_id), task_id

    return [group for _task_id, group in sorted(groups.items(), key=first_saved)]


def render_gallery(entries: list[dict[str, Any]]) -> str:
    """
    An ``index.html`` showing each clip in a ``<video controls>`` and each picture in an ``<img>``, with prompt,
    task id, index and size, one section per task (see :func:`group_by_task`).

    Every ``src`` and link is relative, so the folder can be served or copied as it is.

    :param entries: the manifest's entries (clips and pictures).
    """
    sections = []
    for group in group_by_task(entries):
        task_id = html.escape(str(group[0].get("mj_task_id")))
        action = html.escape(str(group[0].get("action") or ("IMAGE" if entry_kind(group[0]) == "image" else "VIDEO")))
        pictures = sum(entry_kind(entry) == "image" for entry in group)
        counts = ((len(group) - pictures, "clip"), (pictures, "picture"))
        contents = ", ".join(_plural(count, noun) for count, noun in counts if count)
        figures = "\n".join(_figure(entry) for entry in group)
        sections.append(
            f"""<section>
<h2>{action} <code>{task_id}</code> · {contents}</h2>
<div class="media">
{figures}
</div>
</section>"""
        )
    pictures = sum(entry_kind(entry) == "image" for entry in entries)
    tasks = {str(entry.get("mj_task_id")) for entry in entries}
    counted = [_plural(len(entries) - pictures, "clip")] + ([_plural(pictures, "picture")] if pictures else [])
    summary = f"{' and '.join(counted)} of {_plural(len(tasks), 'task')}"
    title = "Midjourney clips and pictures" if pictures else "Midjourney clips"
    return f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<style>
{_GALLERY_STYLE}
</style>
</head>
<body>
<header>
  <h1>{title}</h1>
  <p>{html.escape(summary)} · <a href="{MANIFEST_NAME}">{MANIFEST_NAME}</a> · updated {html.escape(now_iso())}</p>
</header>
<main>
{chr(10).join(sections)}
</main>
</body>
</html>
"""
