"""The API's paths, relative to the connection's base URL (a speed-mode prefix goes in front: ``/mj-fast/mj/…``)."""

from __future__ import annotations

from typing import Final

SUBMIT_VIDEO_PATH: Final = "/mj/submit/video"
SUBMIT_IMAGINE_PATH: Final = "/mj/submit/imagine"
SUBMIT_ACTION_PATH: Final = "/mj/submit/action"
SUBMIT_MODAL_PATH: Final = "/mj/submit/modal"
LIST_PATH: Final = "/mj/task/list-by-condition"


def fetch_path(mj_task_id: str) -> str:
    """The API path that fetches one task."""
    return f"/mj/task/{mj_task_id}/fetch"


def cancel_path(mj_task_id: str) -> str:
    """The API path that cancels one task (trueai serves it; other servers answer 404)."""
    return f"/mj/task/{mj_task_id}/cancel"
