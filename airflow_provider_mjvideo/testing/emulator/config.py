"""What an emulator can be told: :class:`EmulatorConfig`, :class:`FaultConfig` and their enumerations."""

from __future__ import annotations

from dataclasses import dataclass, field

from airflow_provider_mjvideo.testing.emulator.flavors import FLAVOR_BY_NAME

ROUTES = ("submit", "imagine", "action", "modal", "fetch", "list", "cancel", "media", "other")
"""Route names used in the request log, :meth:`MidjourneyEmulator.count` and ``fail_next``.

``"submit"`` is ``POST /mj/submit/video``; ``"imagine"``, ``"action"`` and ``"modal"`` the other
``/mj/submit/...`` routes.
"""
SUBMISSION_ROUTES = ("submit", "imagine", "action", "modal")
"""The paid routes that create or confirm tasks (fault group ``submit``, ``accepted``/``rejected`` counters)."""
BOT_TYPES = ("MID_JOURNEY", "NIJI_JOURNEY")
FAULT_KINDS = ("500", "502", "503", "504", "429", "slow", "drop", "malformed")
"""Injectable fault kinds, in the order in which rates are accumulated for a draw."""
FLAVORS = tuple(FLAVOR_BY_NAME)
"""Server families the emulator imitates (see :mod:`.flavors` for what each one does differently)."""
AUTH_STYLES = ("bearer", "mj-api-secret", "raw", "any")
URL_SHAPES = ("objects", "strings", "video_url_only", "video_urls_json_string", "image_url_mp4")
UNKNOWN_FETCH = ("empty", "null", "204")
SPEED_PREFIXES = {"mj-fast": "fast", "mj-relax": "relax", "mj-turbo": "turbo"}


@dataclass
class FaultConfig:
    """Fault injection settings (mutable; read on every request).

    Rates map a fault kind (see :data:`FAULT_KINDS`) to a probability; one uniform draw per request
    picks at most one kind by cumulative rate, so rates of a group should add up to at most 1.

    Attributes:
        seed: Seed of the fault random generator (re-seeded whenever this object or the seed changes).
        fetch: Rates for fetch, list-by-condition and cancel requests.
        submit: Rates for the submission routes (video, imagine, action, modal); a faulted one creates no task.
        media: Rates for clip and thumbnail downloads.
        retry_after: Seconds sent in the ``Retry-After`` header of injected 429s.
        slow_seconds: Delay of the "slow" fault before the normal answer.
        fail_next: Deterministic queue of ``(target, kind)``; each entry is consumed by the first request
            whose route name (``"fetch"``, ``"list"``, ...), route group (``"fetch"`` covers list and
            cancel too, ``"submit"`` imagine, action and modal too) matches ``target``, or any API request
            when ``target`` is ``"*"``.
    """

    seed: int = 0
    fetch: dict[str, float] = field(default_factory=dict)
    submit: dict[str, float] = field(default_factory=dict)
    media: dict[str, float] = field(default_factory=dict)
    retry_after: float = 0.1
    slow_seconds: float = 0.5
    fail_next: list[tuple[str, str]] = field(default_factory=list)


@dataclass
class EmulatorConfig:
    """Behaviour of a :class:`MidjourneyEmulator` (mutable; fields are read on every request).

    Attributes:
        api_key: The key clients must send.
        auth_style: Header the server demands: ``"bearer"`` (``Authorization: Bearer <key>``),
            ``"mj-api-secret"``, ``"raw"`` (``Authorization: <key>`` or ``mj-api-secret``; Bearer is
            rejected) or ``"any"`` of those.
        flavor: ``"trueai"``, ``"novicezk"`` or ``"newapi"`` (error shapes, routes, quirks).
        video_duration: Seconds from submit to SUCCESS (snapshotted per task at submit); also of image tasks
            (imagine, upscale, variation, reroll) unless ``image_duration`` is set.
        urls_after_success: Seconds a task is SUCCESS without video URLs (snapshotted per task).
        url_shape: Where clip URLs appear on SUCCESS, one of :data:`URL_SHAPES`.
        batch_size: Clips per task unless the submit body's ``batchSize`` (1, 2 or 4) says otherwise.
        fail_rate: Chance that a new task (any kind) ends in FAILURE (seeded by ``seed``).
        seed: Seed of the outcome random generator (applied at construction and :meth:`reset`).
        submit_codes: Queue of codes forced on the next submissions, whichever of the four submission routes
            they come to (1, 21, 22 accept; others reject).
        unknown_fetch: trueai answer for an unknown task id: ``"empty"`` (200, empty body),
            ``"null"`` (200, ``null``) or ``"204"``.
        newapi_blank_status_seconds: new-api serves ``status: ""`` for this long after submit.
        zero_times: Send 0 rather than null for unset startTime/finishTime.
        extend_action_name: ``action`` of extend tasks (``"VIDEO"`` or ``"VIDEO_EXTEND"``).
        list_by_condition_enabled: When False the list-by-condition route answers 404.
        max_list_ids: When set, list-by-condition with more ids answers HTTP 400.
        path_prefix: Base path of the API (e.g. ``"/api"``); API routes outside it answer 404.
        clip_size_bytes: When set, clips are streamed generated MP4s of exactly this size.
        media_status: ``"task_id/index"`` or ``"*"`` mapped to an HTTP status served instead of a clip.
        media_content_type: ``Content-Type`` of clip downloads.
        media_drop_after_bytes: Close clip downloads after this many body bytes (full Content-Length).
        media_host: Host name written in clip URLs instead of the bound address (e.g. ``"localhost"``
            while the API is reached as ``127.0.0.1``), so that clips sit on another origin, like a CDN.
        response_delay: Seconds added before every API (non-media) response.
        faults: Fault injection settings.
        fail_next: Same as ``faults.fail_next``; consulted first.
        max_recorded_requests: Oldest request log entries are dropped beyond this many.
        image_duration: Seconds from submit to SUCCESS of image tasks; None means ``video_duration``.
        remix: Remix mode of the account: pressing a variation, reroll or animate button answers code 21
            (new-api: 1) and leaves the new task in ``MODAL`` until ``POST /mj/submit/modal`` confirms it.
        video_route: Whether ``POST /mj/submit/video`` exists (404 when False, as on novicezk's open-source
            proxy, which has no video route); also whether upscales carry Animate buttons. Defaults to True
            for every flavour, novicezk included, so that a flavour switch keeps video working.
    """

    api_key: str = "emulator-key"
    auth_style: str = "bearer"
    flavor: str = "trueai"
    video_duration: float = 10.0
    urls_after_success: float = 0.0
    url_shape: str = "objects"
    batch_size: int = 4
    fail_rate: float = 0.0
    seed: int = 0
    submit_codes: list[int] = field(default_factory=list)
    unknown_fetch: str = "empty"
    newapi_blank_status_seconds: float = 0.2
    zero_times: bool = False
    extend_action_name: str = "VIDEO"
    list_by_condition_enabled: bool = True
    max_list_ids: int | None = None
    path_prefix: str = ""
    clip_size_bytes: int | None = None
    media_status: dict[str, int] = field(default_factory=dict)
    media_content_type: str = "video/mp4"
    media_drop_after_bytes: int | None = None
    media_host: str | None = None
    response_delay: float = 0.0
    faults: FaultConfig = field(default_factory=FaultConfig)
    fail_next: list[tuple[str, str]] = field(default_factory=list)
    max_recorded_requests: int = 100_000
    image_duration: float | None = None
    remix: bool = False
    video_route: bool = True

    def __post_init__(self) -> None:
        """Reject unknown enumerated values early."""
        for name, allowed in (
            ("auth_style", AUTH_STYLES),
            ("flavor", FLAVORS),
            ("url_shape", URL_SHAPES),
            ("unknown_fetch", UNKNOWN_FETCH),
        ):
            if getattr(self, name) not in allowed:
                raise ValueError(f"{name} must be one of {allowed}, got {getattr(self, name)!r}")
        if self.batch_size not in (1, 2, 4):
            raise ValueError(f"batch_size must be 1, 2 or 4, got {self.batch_size!r}")
