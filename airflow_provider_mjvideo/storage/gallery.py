"""``index.html``: a self-contained gallery of a destination folder's clips, one ``<video controls>`` each."""

from __future__ import annotations

import html
from typing import Any, Final

from airflow_provider_mjvideo.storage.downloader import human_size
from airflow_provider_mjvideo.storage.manifest import MANIFEST_NAME, now_iso

GALLERY_NAME: Final = "index.html"

_GALLERY_STYLE = """
body{font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;background:#101014;color:#ececf1}
header{padding:20px 28px 6px}h1{font-size:22px;margin:0 0 4px}header p{margin:0;color:#a0a0ad}
main{display:grid;grid-template-columns:repeat(auto-fill,minmax(280px,1fr));gap:20px;padding:20px 28px 28px}
figure{margin:0;background:#1b1b22;border:1px solid #2c2c36;border-radius:10px;overflow:hidden}
video{display:block;width:100%;aspect-ratio:16/9;background:#000}
figcaption{padding:10px 12px 12px}.prompt{font-weight:600;margin-bottom:6px;overflow-wrap:anywhere}
dl{display:grid;grid-template-columns:auto 1fr;gap:2px 10px;margin:0;font-size:13px;color:#b8b8c4}
dt{color:#7d7d8a}dd{margin:0;overflow-wrap:anywhere;font-family:ui-monospace,Menlo,Consolas,monospace}
a{color:#b69cff}
""".strip()


def render_gallery(entries: list[dict[str, Any]]) -> str:
    """
    An ``index.html`` showing each clip in a ``<video controls>`` with prompt, task id, index and size.

    Every ``src`` and link is relative, so the folder can be served or copied as it is.

    :param entries: the manifest's clip entries, in order.
    """
    figures = []
    for entry in entries:
        name = html.escape(str(entry.get("file") or ""), quote=True)
        prompt = html.escape(str(entry.get("prompt") or "(no prompt recorded)"))
        size = int(entry.get("bytes") or 0)
        sha = html.escape(str(entry.get("sha256") or "")[:16])
        figures.append(
            f"""<figure>
  <video controls preload="auto" src="{name}#t=0.1" title="{name}"></video>
  <figcaption>
    <div class="prompt">{prompt}</div>
    <dl>
      <dt>task</dt><dd>{html.escape(str(entry.get("mj_task_id")))}</dd>
      <dt>clip</dt><dd>{int(entry.get("index") or 0)}</dd>
      <dt>size</dt><dd>{html.escape(human_size(size))} ({size:,} bytes)</dd>
      <dt>file</dt><dd><a href="{name}">{name}</a></dd>
      <dt>sha256</dt><dd>{sha}…</dd>
    </dl>
  </figcaption>
</figure>"""
        )
    tasks = sorted({str(entry.get("mj_task_id")) for entry in entries})
    summary = (
        f"{len(entries)} clip{'s' if len(entries) != 1 else ''} of {len(tasks)} task{'s' if len(tasks) != 1 else ''}"
    )
    return f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Midjourney clips</title>
<style>
{_GALLERY_STYLE}
</style>
</head>
<body>
<header>
  <h1>Midjourney clips</h1>
  <p>{html.escape(summary)} · <a href="{MANIFEST_NAME}">{MANIFEST_NAME}</a> · updated {html.escape(now_iso())}</p>
</header>
<main>
{chr(10).join(figures)}
</main>
</body>
</html>
"""
