"""notifyHook callbacks (internal): POST the task object to loopback hooks whenever it changes."""

from __future__ import annotations

import http.client
import json
import threading
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from airflow_provider_mjvideo.testing.emulator.httpd import is_loopback_url
from airflow_provider_mjvideo.testing.emulator.tasks import Task, TaskBook, urls_ready

#: Seconds between two looks at the watched tasks.
TICK_SECONDS = 0.1


class Notifier:
    """Watches the book's tasks that have a notifyHook and POSTs each change once, fire-and-forget.

    Args:
        book: The tasks; :attr:`TaskBook.watched` says which ones still owe callbacks.
        render: Builds the task object sent (the same one fetch serves), called with the lock held.
        sent: Called with ``(url, payload, ok)`` after every attempt, without the lock.
    """

    def __init__(
        self,
        book: TaskBook,
        render: Callable[[Task, float], dict[str, Any]],
        sent: Callable[[str, dict[str, Any], bool], None],
    ) -> None:
        self._book = book
        self._render = render
        self._sent = sent

    def run(self, stop: threading.Event) -> None:
        """Tick until ``stop`` is set."""
        while not stop.wait(TICK_SECONDS):
            try:
                self.tick()
            except Exception:  # pragma: no cover - never let the ticker die
                continue

    def tick(self) -> None:
        """Send what changed since the last tick; stop watching finished tasks."""
        now = time.monotonic()
        book = self._book
        due: list[tuple[str, dict[str, Any]]] = []
        with book.lock:
            for task_id in list(book.watched):
                task = book.tasks.get(task_id)
                if task is None or not task.notify_hook:
                    book.watched.discard(task_id)
                    continue
                obj = self._render(task, now)
                ready = urls_ready(task, now)
                key = (obj["status"], obj["progress"], ready)
                if key != task.last_notified:
                    task.last_notified = key
                    due.append((task.notify_hook, obj))
                if obj["status"] in ("FAILURE", "CANCEL") or (obj["status"] == "SUCCESS" and ready):
                    book.watched.discard(task_id)
        for url, payload in due:
            if is_loopback_url(url):  # submits keep only loopback hooks; checked again before any connection
                self._sent(url, payload, post(url, payload))


def post(url: str, payload: dict[str, Any]) -> bool:
    """POST ``payload`` to a loopback ``url`` once; no retries, no redirects, no proxies. Return success."""
    if not is_loopback_url(url):
        raise ValueError(f"notifyHook {url!r} is not a loopback URL")
    parts = urlsplit(url)
    conn_cls = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
    target = parts.path or "/"
    if parts.query:
        target += "?" + parts.query
    conn = conn_cls(parts.hostname or "127.0.0.1", parts.port, timeout=2.0)
    try:
        data = json.dumps(payload, ensure_ascii=False).encode("utf-8")
        conn.request("POST", target, body=data, headers={"Content-Type": "application/json"})
        conn.getresponse().read()
        return True
    except (OSError, http.client.HTTPException):
        return False
    finally:
        conn.close()
