"""
The Midjourney view's pages as server-rendered HTML: every value escaped, every link relative, no script but the
few lines that follow the Airflow UI's light or dark theme.

Saved clips play inline (``<video>``, streamed by the app), saved pictures show as ``<img>``; a clip or picture
that no download saved links to the server's URL, which may have expired.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from html import escape
from typing import Final

from airflow_provider_mjvideo.ui import paths
from airflow_provider_mjvideo.ui.data import MjTaskView, RunView, SavedFile, TaskInstanceRef

#: Follow the Airflow UI's theme: the parent page's ``dark``/``light`` class (same origin), else its stored
#: choice (``theme`` in local storage), else the system's preference (the stylesheet's media query).
_THEME_SCRIPT: Final = """<script>
(function () {
  var root = document.documentElement;
  function apply() {
    var theme = null;
    try {
      var outer = window.parent.document.documentElement.classList;
      theme = outer.contains("dark") ? "dark" : outer.contains("light") ? "light" : null;
    } catch (e) {}
    if (!theme) { try { theme = localStorage.getItem("theme"); } catch (e) {} }
    if (theme === "dark" || theme === "light") { root.dataset.theme = theme; } else { delete root.dataset.theme; }
  }
  apply();
  window.addEventListener("storage", apply);
  try {
    new MutationObserver(apply).observe(window.parent.document.documentElement, {attributes: true});
  } catch (e) {}
})();
</script>"""
_EXPIRY_NOTE: Final = "not saved: the server's link may have expired"


def _e(value: object) -> str:
    return escape("" if value is None else str(value), quote=True)


def _when(value: object) -> str:
    """An ISO time as ``2026-01-01 12:00:05 UTC``; anything else as it is."""
    if isinstance(value, datetime):
        value = value.isoformat()
    text = str(value or "")
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return text
    return moment.strftime("%Y-%m-%d %H:%M:%S") + (" UTC" if moment.utcoffset() is not None else "")


def _size(size: int | None) -> str:
    if size is None:
        return ""
    if size < 1024 * 1024:
        return f"{size / 1024:.1f} KiB"
    return f"{size / (1024 * 1024):.1f} MiB"


def page(title: str, root: str, body: str) -> str:
    """
    A whole page.

    :param title: its title (plain text).
    :param root: the relative prefix from the page back to the app's root (:func:`paths.up_to_root`).
    :param body: the page's HTML.
    """
    return (
        '<!doctype html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{_e(title)}</title>\n"
        f'<link rel="stylesheet" href="{_e(root + paths.STYLESHEET)}">\n'
        f"{_THEME_SCRIPT}\n</head>\n<body>\n<main>\n{body}\n</main>\n</body>\n</html>\n"
    )


def _saved_media(root: str, run: RunView, saved: SavedFile) -> str:
    src = _e(root + paths.clip_file(run.dag_id, run.run_id, saved.mj_task_id, saved.index))
    what = "picture" if saved.is_image else "clip"
    caption = f"{what} {saved.index} · saved · {_size(saved.size)}".rstrip(" ·")
    if saved.is_image:
        element = f'<img src="{src}" alt="{_e(what)} {saved.index} of task {_e(saved.mj_task_id)}" loading="lazy">'
    else:
        element = (
            f'<video controls muted loop playsinline preload="metadata" src="{src}" '
            f'data-mj-task="{_e(saved.mj_task_id)}" data-index="{saved.index}"></video>'
        )
    return f'<figure class="media">{element}<figcaption>{_e(caption)}</figcaption></figure>'


def _linked_media(task: MjTaskView, index: int, url: str) -> str:
    what = "picture" if task.kind == "image" else "clip"
    return (
        f'<figure class="media unsaved"><a href="{_e(url)}" target="_blank" rel="noopener noreferrer">'
        f"{_e(what)} {index} on the server</a><figcaption>{_e(_EXPIRY_NOTE)}</figcaption></figure>"
    )


def _media(root: str, run: RunView, task: MjTaskView) -> str:
    urls = task.cdn_urls
    indexes = sorted(set(range(len(urls))) | set(task.saved))
    items = []
    for index in indexes:
        if index in task.saved:
            items.append(_saved_media(root, run, task.saved[index]))
        elif index < len(urls):
            items.append(_linked_media(task, index, urls[index]))
    if not items:
        return '<p class="muted">No clips yet.</p>'
    return f'<div class="gallery">{"".join(items)}</div>'


def _reporters(root: str, run: RunView, refs: Iterable[TaskInstanceRef]) -> str:
    links = [
        f'<a href="{_e(root + paths.task_instance_page(run.dag_id, run.run_id, ref.task_id, ref.map_index))}">'
        f"{_e(ref.label)}</a>"
        for ref in sorted(refs, key=lambda ref: (ref.task_id, ref.map_index))
    ]
    return ", ".join(links)


def _task(root: str, run: RunView, task: MjTaskView) -> str:
    summary = task.summary
    status = str(summary.get("status") or "saved")
    reporters = {*task.reported_by, *(saved.saved_by for saved in task.saved.values())}
    facts = [
        ("action", summary.get("action") or ""),
        ("kind", task.kind),
        ("submitted", _when(summary.get("submit_time"))),
        ("finished", _when(summary.get("finish_time"))),
    ]
    facts_html = "".join(f"<dt>{_e(name)}</dt><dd>{_e(value)}</dd>" for name, value in facts if value)
    failure = f'<p class="failure">{_e(summary["fail_reason"])}</p>' if summary.get("fail_reason") else ""
    return (
        f'<article class="mj-task" data-mj-task="{_e(task.id)}">'
        f'<header><h3>task <code>{_e(task.id)}</code></h3><span class="status status-{_e(status.lower())}">'
        f"{_e(status)}</span></header>"
        f'<p class="prompt">{_e(summary.get("prompt") or "")}</p>'
        f'<dl class="facts">{facts_html}<dt>Airflow tasks</dt><dd>{_reporters(root, run, reporters)}</dd></dl>'
        f"{failure}{_media(root, run, task)}</article>"
    )


def _run_header(root: str, run: RunView, *, heading: str = "h2") -> str:
    airflow_run = root + paths.airflow_run_page(run.dag_id, run.run_id)
    return (
        f'<header class="run-header"><{heading}><code>{_e(run.dag_id)}</code> · {_e(run.run_id)}</{heading}>'
        f'<span class="status status-{_e(run.state.lower())}">{_e(run.state)}</span>'
        f'<span class="muted">{_e(_when(run.run_after))}</span>'
        f'<nav><a href="{_e(root + paths.run_page(run.dag_id, run.run_id))}">this run\'s clips</a> · '
        f'<a href="{_e(airflow_run)}" target="_top">the run in Airflow</a></nav></header>'
    )


def _chain(root: str, run: RunView, tasks: list[MjTaskView]) -> str:
    if not tasks:
        return '<p class="muted">No Midjourney tasks here yet.</p>'
    return "".join(_task(root, run, task) for task in tasks)


def runs_page(root: str, runs: list[RunView]) -> str:
    """
    The navigation page: recent runs that made Midjourney tasks, newest first.

    :param root: the relative prefix back to the app's root.
    :param runs: the runs, as :func:`data.recent_runs` found them.
    """
    if not runs:
        body = '<p class="muted">No run of a DAG you may read has made Midjourney tasks yet.</p>'
    else:
        body = "".join(
            f'<section class="run">{_run_header(root, run)}{_chain(root, run, run.tasks)}</section>' for run in runs
        )
    return page("Midjourney", root, f"<h1>Midjourney</h1>{body}")


def run_page(root: str, run: RunView) -> str:
    """
    One run's Midjourney tasks (the DAG run tab).

    :param root: the relative prefix back to the app's root.
    :param run: the run.
    """
    body = f'<section class="run">{_run_header(root, run, heading="h1")}{_chain(root, run, run.tasks)}</section>'
    return page(f"Midjourney · {run.dag_id} · {run.run_id}", root, body)


def task_instance_page(root: str, run: RunView, ref: TaskInstanceRef, tasks: list[MjTaskView]) -> str:
    """
    One task instance's Midjourney tasks (the task instance tab).

    :param root: the relative prefix back to the app's root.
    :param run: the run.
    :param ref: the task instance.
    :param tasks: its Midjourney tasks (:meth:`RunView.for_task_instance`).
    """
    heading = f'<p class="muted">Airflow task <code>{_e(ref.label)}</code></p>'
    body = f'<section class="run">{_run_header(root, run, heading="h1")}{heading}{_chain(root, run, tasks)}</section>'
    return page(f"Midjourney · {run.dag_id} · {ref.label}", root, body)


def message_page(root: str, title: str, message: str) -> str:
    """
    A page that only says something (a run that does not exist).

    :param root: the relative prefix back to the app's root.
    :param title: its heading.
    :param message: what it says.
    """
    return page(title, root, f"<h1>{_e(title)}</h1><p>{_e(message)}</p>")
