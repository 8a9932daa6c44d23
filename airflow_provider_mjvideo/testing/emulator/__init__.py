"""A local HTTP emulator of the midjourney-proxy video API family (stdlib only).

It serves the routes real servers expose (``/mj/submit/video``, ``/mj/task/{id}/fetch``,
``/mj/task/list-by-condition``, ``/mj/task/{id}/cancel``) with the quirks of the trueai, novicezk and
new-api flavours, a fake CDN for the resulting clips (``/media/{task}/{index}.mp4``), deterministic and
random fault injection, and notifyHook callbacks to loopback URLs. It never opens a connection to a
non-loopback address.

Example::

    with MidjourneyEmulator(EmulatorConfig(video_duration=0.5)) as emu:
        requests.post(f"{emu.url}/mj/submit/video", json={...}, headers={"Authorization": "Bearer emulator-key"})

Modules (all but this one internal):

* :mod:`.config`: :class:`EmulatorConfig`, :class:`FaultConfig` and the enumerations.
* :mod:`.server`: :class:`MidjourneyEmulator` (lifecycle, test-facing state, the request pipeline).
* :mod:`.flavors`: one object per server family with that family's quirks.
* :mod:`.routing`, :mod:`.auth`: which route a request names; whether it carries the key.
* :mod:`.submit`: the video submit route and the answers every submission route shares.
* :mod:`.task_routes`, :mod:`.task_json`, :mod:`.tasks`: fetch/list/cancel, the task object, task state and timeline.
* :mod:`.cdn`: the fake CDN (clips, thumbnails, Range). :mod:`.faults`: fault injection. :mod:`.notify`: notifyHook.
* :mod:`.httpd`: HTTP server plumbing and the request log.
"""

from __future__ import annotations

from airflow_provider_mjvideo.testing.emulator.config import (
    AUTH_STYLES,
    FAULT_KINDS,
    FLAVORS,
    ROUTES,
    URL_SHAPES,
    EmulatorConfig,
    FaultConfig,
)
from airflow_provider_mjvideo.testing.emulator.httpd import RecordedRequest
from airflow_provider_mjvideo.testing.emulator.server import MidjourneyEmulator

__all__ = [
    "AUTH_STYLES",
    "FAULT_KINDS",
    "FLAVORS",
    "ROUTES",
    "URL_SHAPES",
    "EmulatorConfig",
    "FaultConfig",
    "MidjourneyEmulator",
    "RecordedRequest",
]
