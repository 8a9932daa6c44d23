"""Calls to a running :class:`MidjourneyEmulator` over real HTTP, for the emulator's own image-pipeline tests."""

from __future__ import annotations

import time
from typing import Any

import requests

from airflow_provider_mjvideo.testing import MidjourneyEmulator

#: The emulator's default key, as a Bearer header.
BEARER = {"Authorization": "Bearer emulator-key"}


def _auth(emu: MidjourneyEmulator) -> dict[str, str]:
    """The emulator's own key as a Bearer header (``BEARER`` for an emulator with the default key)."""
    return {"Authorization": f"Bearer {emu.config.api_key}"}


def post(emu: MidjourneyEmulator, route: str, prefix: str = "", **body: Any) -> requests.Response:
    """POST ``body`` to ``/mj/submit/<route>``."""
    return requests.post(f"{emu.url}{prefix}/mj/submit/{route}", json=body, headers=_auth(emu), timeout=5)


def accepted_id(response: requests.Response) -> str:
    """Return the task id of an accepted submission."""
    assert response.status_code == 200, response.text
    assert response.json()["code"] in (1, 21, 22), response.text
    return response.json()["result"]


def fetch(emu: MidjourneyEmulator, task_id: str) -> dict[str, Any]:
    """GET one task."""
    response = requests.get(f"{emu.url}/mj/task/{task_id}/fetch", headers=_auth(emu), timeout=5)
    assert response.status_code == 200, response.text
    return response.json()


def wait_for(emu: MidjourneyEmulator, task_id: str, status: str = "SUCCESS", timeout: float = 5.0) -> dict[str, Any]:
    """Poll until the task has ``status``; return it."""
    deadline = time.monotonic() + timeout
    while (task := fetch(emu, task_id))["status"] != status:
        assert task["status"] not in {"SUCCESS", "FAILURE", "CANCEL"} - {status}, task
        assert time.monotonic() < deadline, f"task stuck in {task['status']!r}"
        time.sleep(0.03)
    return task


def finished_grid(emu: MidjourneyEmulator, **body: Any) -> dict[str, Any]:
    """Imagine, force it finished, and return the task."""
    task_id = accepted_id(post(emu, "imagine", **{"prompt": "a red fox", **body}))
    emu.complete_task(task_id)
    return fetch(emu, task_id)


def press(emu: MidjourneyEmulator, task: dict[str, Any], label: str) -> requests.Response:
    """Press the button labelled ``label`` (or with that emoji) on ``task``."""
    (custom_id,) = [b["customId"] for b in task["buttons"] if label in (b["label"], b["emoji"])]
    return post(emu, "action", taskId=task["id"], customId=custom_id)


def finished_upscale(emu: MidjourneyEmulator, label: str = "U2") -> dict[str, Any]:
    """Imagine, upscale with ``label``, force both finished, and return the upscale."""
    upscale_id = accepted_id(press(emu, finished_grid(emu), label))
    emu.complete_task(upscale_id)
    return fetch(emu, upscale_id)
