"""A local HTTP emulator of the midjourney-proxy video API family (stdlib only).

It serves the routes real servers expose (``/mj/submit/video``, ``/mj/task/{id}/fetch``,
``/mj/task/list-by-condition``, ``/mj/task/{id}/cancel``, and the image pipeline's
``/mj/submit/imagine``, ``/mj/submit/action``, ``/mj/submit/modal``) with the quirks of the trueai,
novicezk and new-api flavours, a fake CDN for the resulting clips and pictures
(``/media/{task}/{index}.mp4``, ``/media/{task}/grid.png``, ``/media/{task}/{index}.png``),
deterministic and random fault injection, and notifyHook callbacks to loopback URLs. It never opens a
connection to a non-loopback address.

Example::

    with MidjourneyEmulator(EmulatorConfig(video_duration=0.5)) as emu:
        requests.post(f"{emu.url}/mj/submit/video", json={...}, headers={"Authorization": "Bearer emulator-key"})

Modules (all but this one internal):

* :mod:`.config`: :class:`EmulatorConfig`, :class:`FaultConfig` and the enumerations.
* :mod:`.server`: :class:`MidjourneyEmulator` (lifecycle, test-facing state, the request pipeline).
* :mod:`.flavors`: one object per server family with that family's quirks.
* :mod:`.routing`, :mod:`.auth`: which route a request names; whether it carries the key.
* :mod:`.submit`: what every submission route shares (first checks, answers, creating the task).
* :mod:`.video`, :mod:`.imagine`, :mod:`.actions`: the submission routes (actions: buttons and the remix modal).
* :mod:`.buttons`: the buttons of finished tasks, their custom ids, and what pressing one makes.
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
