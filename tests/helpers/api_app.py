"""
Airflow's own API server app, in the test process, on the test session's metadata database.

Built by ``airflow.api_fastapi.app.create_app`` exactly as ``airflow api-server`` builds it (plugins mounted, the
auth manager in front), and called through Starlette's ``TestClient``: no port, no process. The auth manager is
:class:`helpers.auth.OneDagDeniedAuthManager` with three users: ``admin`` (admin), ``viewer`` and ``outsider``
(viewers; the outsider may not read :data:`helpers.auth.DENIED_DAG_ID`).

:class:`HitlResponder` answers the human-in-the-loop tasks of a ``dag.test()`` through the same REST routes a
person's answer in the UI takes (``PATCH …/hitlDetails``), from a thread, while ``dag.test()`` waits.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

USERS = {"admin": "admin", "viewer": "viewer", "outsider": "viewer"}
#: Environment of the app's configuration (read when the app is created and on every request).
APP_ENV = {
    "AIRFLOW__CORE__AUTH_MANAGER": "helpers.auth.OneDagDeniedAuthManager",
    "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": ",".join(f"{user}:{role}" for user, role in USERS.items()),
    "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "False",
    "AIRFLOW__API_AUTH__JWT_SECRET": "mjvideo-in-process-jwt-secret-" + "0123456789abcdef" * 4,
}


class InProcessApi:
    """The API server app and clients on it: anonymous, or logged in as one of :data:`USERS`."""

    def __init__(self) -> None:
        from airflow.api_fastapi.app import create_app

        self.app = create_app(apps="core")

    def token(self, user: str) -> str:
        """A JWT for ``user``, signed by the app's auth manager (what ``/auth/token`` hands out after a log-in)."""
        from airflow.api_fastapi.app import get_auth_manager
        from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser

        return get_auth_manager().generate_jwt(SimpleAuthManagerUser(username=user, role=USERS[user]))

    def client(self, user: str | None = None, *, cookie: bool = True) -> Any:
        """
        A client, logged in as ``user`` (``None``: anonymous).

        :param user: one of :data:`USERS`, or ``None``.
        :param cookie: send the token as the UI does (the ``_token`` cookie); ``False``: an ``Authorization`` header.
        """
        from fastapi.testclient import TestClient

        client = TestClient(self.app, base_url="http://127.0.0.1")
        if user is not None:
            if cookie:
                client.cookies.set("_token", self.token(user))
            else:
                client.headers["Authorization"] = f"Bearer {self.token(user)}"
        return client


@dataclass
class HitlResponder:
    """
    Answers pending human-in-the-loop requests of one DAG from a thread: ``answers[task_id]`` is the options chosen.

    Every request seen is kept in :attr:`seen` (the API's JSON of it), every answer's HTTP status in :attr:`statuses`.
    """

    api: InProcessApi
    dag_id: str
    answers: dict[str, list[str]]
    user: str = "admin"
    #: Called with a request's JSON before it is answered; its return value replaces the chosen options.
    before_answer: Callable[[dict[str, Any]], list[str] | None] | None = None
    seen: dict[str, dict[str, Any]] = field(default_factory=dict)
    statuses: dict[str, list[int]] = field(default_factory=dict)
    errors: list[BaseException] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    @staticmethod
    def route(detail: dict[str, Any]) -> str:
        """The REST route that answers one request (``PATCH`` with ``{"chosen_options": [...]}``)."""
        ti = detail["task_instance"]
        return (
            f"/api/v2/dags/{ti['dag_id']}/dagRuns/{ti['dag_run_id']}/taskInstances/{ti['task_id']}/"
            f"{ti['map_index']}/hitlDetails"
        )

    def _pending(self, client: Any) -> list[dict[str, Any]]:
        answer = client.get(f"/api/v2/dags/{self.dag_id}/dagRuns/~/hitlDetails")
        answer.raise_for_status()
        return [detail for detail in answer.json()["hitl_details"] if not detail.get("response_received")]

    def _loop(self) -> None:
        client = self.api.client(self.user, cookie=False)
        try:
            while not self._stop.is_set() and len(self.seen) < len(self.answers):
                for detail in self._pending(client):
                    ti = detail["task_instance"]
                    if ti["task_id"] not in self.answers or ti["task_id"] in self.seen:
                        continue
                    self.seen[ti["task_id"]] = detail
                    chosen = self.answers[ti["task_id"]]
                    if self.before_answer is not None:
                        chosen = self.before_answer(detail) or chosen
                    answer = client.patch(self.route(detail), json={"chosen_options": chosen})
                    self.statuses.setdefault(ti["task_id"], []).append(answer.status_code)
                time.sleep(0.2)
        except BaseException as err:  # reported by stop(): a thread's exception is otherwise lost
            self.errors.append(err)

    def __enter__(self) -> HitlResponder:
        self._thread = threading.Thread(target=self._loop, name="hitl-responder", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
        if self.errors:
            raise self.errors[0]
