"""The server families the emulator imitates, one object each, holding everything that family does its own way.

Request handling never compares flavour names: it asks the :class:`Flavor` of the live config
(:func:`flavor_of`). What the families share (routes, task JSON, timelines) lives elsewhere.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from airflow_provider_mjvideo.testing.emulator.buttons import PRESSES, verb_of
from airflow_provider_mjvideo.testing.emulator.httpd import Resp, code_resp, is_int, json_resp

if TYPE_CHECKING:
    from airflow_provider_mjvideo.testing.emulator.config import EmulatorConfig


class Flavor:
    """Defaults shared by the families; each subclass overrides its quirks."""

    name: ClassVar[str]
    #: Whether ``POST /mj/task/{id}/cancel`` exists (404 otherwise).
    has_cancel: ClassVar[bool] = False
    #: Whether finished image tasks also list their single pictures in ``imageUrls``.
    lists_image_urls: ClassVar[bool] = False

    def unauthorized(self) -> Resp:
        """Return the answer to a request with a missing or wrong key."""
        raise NotImplementedError

    def unknown_task(self, cfg: EmulatorConfig) -> Resp:
        """Return the answer of ``GET /mj/task/{id}/fetch`` for an id the server does not know."""
        return Resp(200, b"null")

    def blank_status_seconds(self, cfg: EmulatorConfig) -> float:
        """Return how long after submit a task's ``status`` and ``progress`` read ``""``."""
        return 0.0

    def sent_code(self, code: int) -> int:
        """Return the submit code as the client sees it (gateways rewrite some)."""
        return code

    def binding_error(self, data: dict[str, Any]) -> Resp | None:
        """Return the answer to a submit body the server cannot even parse into its types, else None."""
        return None

    def state_error(self, state: Any) -> Resp | None:
        """Return the answer to a submit whose ``state`` the server refuses, else None."""
        return None

    def bad_base64(self) -> Resp:
        """Return the answer to an imagine whose ``base64Array`` holds something other than a data URI."""
        return code_resp(4, "base64Array items must be data:<mime>;base64,<data> URIs")

    def refuse_button(self, customid: str) -> Resp | None:
        """Return the answer to an action whose ``customId`` the server refuses before any lookup, else None."""
        return None

    def task_missing(self) -> Resp:
        """Return the answer to an action or modal on a task id the server does not know."""
        return code_resp(3, "Task not found")

    def parent_not_success(self, status: str) -> Resp:
        """Return the answer to an action on a task that is not SUCCESS."""
        return code_resp(4, f"Parent task status is {status}, not SUCCESS")


class TrueAI(Flavor):
    """trueai-org/midjourney-proxy (C#): plain-text 401, cancel route, state capped at 255 characters."""

    name = "trueai"
    has_cancel = True
    lists_image_urls = True
    #: Longest ``state`` accepted; longer ones get trueai's ``{"success": false}`` envelope.
    max_state_length: ClassVar[int] = 255

    def unauthorized(self) -> Resp:
        """trueai answers a plain-text 401."""
        return Resp(401, b"Unauthorized: invalid or missing API key", content_type="text/plain; charset=utf-8")

    def unknown_task(self, cfg: EmulatorConfig) -> Resp:
        """trueai answers an empty 200, ``null`` or 204, as ``cfg.unknown_fetch`` says."""
        if cfg.unknown_fetch == "null":
            return Resp(200, b"null")
        if cfg.unknown_fetch == "204":
            return Resp(204, b"", content_type=None)
        return Resp(200, b"")

    def state_error(self, state: Any) -> Resp | None:
        """trueai refuses a ``state`` longer than 255 characters with HTTP 200 and ``code: -1``."""
        if isinstance(state, str) and len(state) > self.max_state_length:
            return json_resp(200, {"success": False, "code": -1, "message": "state too long"})
        return None

    def bad_base64(self) -> Resp:
        """trueai's own words: "bad base64"."""
        return code_resp(4, "base64格式错误")

    def task_missing(self) -> Resp:
        """trueai answers HTTP 404 with code 3, as for the parent of a video extend."""
        return code_resp(3, "Task not found", status=404)


class NoviceZK(Flavor):
    """novicezk/midjourney-proxy (Java): 401 with an empty body, ``null`` for unknown ids, no cancel."""

    name = "novicezk"

    def unauthorized(self) -> Resp:
        """novicezk answers 401 with an empty body."""
        return Resp(401, b"", content_type=None)

    def refuse_button(self, customid: str) -> Resp | None:
        """novicezk predates Midjourney video: its action route knows no animate button."""
        press = PRESSES.get(verb_of(customid) or "")
        if press is not None and press.action == "VIDEO":
            return code_resp(4, f"Unsupported action: {customid}")
        return None


class NewAPI(Flavor):
    """QuantumNous/new-api gateways: JSON errors, 21/22 rewritten to 1, blank status at first, Go binding."""

    name = "newapi"

    def unauthorized(self) -> Resp:
        """new-api answers ``{"error": {"message": ...}}``."""
        return json_resp(401, {"error": {"message": "Invalid token (emulator)", "type": "new_api_error", "code": ""}})

    def unknown_task(self, cfg: EmulatorConfig) -> Resp:
        """new-api answers HTTP 400 ``task_no_found``."""
        return self.gateway_error("task_no_found")

    def blank_status_seconds(self, cfg: EmulatorConfig) -> float:
        """new-api knows no status until its first upstream poll."""
        return cfg.newapi_blank_status_seconds

    def sent_code(self, code: int) -> int:
        """new-api rewrites every accepting code (21, 22) to 1."""
        return 1

    def binding_error(self, data: dict[str, Any]) -> Resp | None:
        """new-api binds ``index`` into a Go int: a JSON string fails before anything else is read."""
        if data.get("index") is not None and not is_int(data["index"]):
            return self.gateway_error("json: cannot unmarshal string into Go struct field index of type int")
        return None

    def refuse_button(self, customid: str) -> Resp | None:
        """new-api maps a custom id to a billing action first and knows no video ones (``unknown_action``)."""
        parts = customid.split("::")
        action = parts[2] if len(parts) > 2 and parts[1] == "JOB" else parts[1] if len(parts) > 1 else ""
        if any(known in action for known in _NEWAPI_ACTIONS) or action in _NEWAPI_EXACT_ACTIONS:
            return None
        return self.gateway_error(f"unknown_action:{customid}")

    def task_missing(self) -> Resp:
        """new-api looks the task up in its own database first: HTTP 400 ``task_no_found``."""
        return self.gateway_error("task_no_found")

    def parent_not_success(self, status: str) -> Resp:
        """new-api checks the status itself: HTTP 400 ``task_status_not_success``."""
        return self.gateway_error("task_status_not_success")

    @staticmethod
    def gateway_error(description: str, code: int = 4) -> Resp:
        """Return new-api's own HTTP 400 error shape."""
        return json_resp(400, {"description": description, "type": "upstream_error", "code": code})


#: Actions new-api recognises in a custom id by substring, as its source does, and those it matches exactly.
_NEWAPI_ACTIONS = ("upsample", "variation", "pan", "reroll")
_NEWAPI_EXACT_ACTIONS = ("Outpaint", "CustomZoom", "Inpaint")

FLAVOR_BY_NAME: dict[str, Flavor] = {flavor.name: flavor for flavor in (TrueAI(), NoviceZK(), NewAPI())}
"""Every flavour by its configuration name (the source of :data:`FLAVORS`)."""


def flavor_of(cfg: EmulatorConfig) -> Flavor:
    """Return the :class:`Flavor` that ``cfg.flavor`` names (read live: tests switch flavours mid-run)."""
    return FLAVOR_BY_NAME[cfg.flavor]
