"""``POST /mj/submit/imagine`` (internal): a prompt, optional image prompts, a 2x2 grid task."""

from __future__ import annotations

import base64
import binascii
import re
from typing import Any

from airflow_provider_mjvideo.testing.emulator.config import BOT_TYPES, EmulatorConfig
from airflow_provider_mjvideo.testing.emulator.httpd import code_resp
from airflow_provider_mjvideo.testing.emulator.submit import Admitted, Outcome, check_prompt

_DATA_URI_RE = re.compile(r"data:([\w.+-]+/[\w.+-]+);base64,(.+)", re.DOTALL)
#: Colours of the four pictures of every grid (U1..U4), see ``media.PALETTE``.
GRID_COLOURS = (0, 1, 2, 3)


def image_duration(cfg: EmulatorConfig) -> float:
    """Return the seconds from submit to SUCCESS of image tasks."""
    return cfg.video_duration if cfg.image_duration is None else cfg.image_duration


def decode_image_prompts(items: Any) -> list[dict[str, Any]] | None:
    """Return ``base64Array``'s data URIs decoded as ``{"mime", "data"}``; None when one is malformed.

    A missing or null ``base64Array`` is no image prompt. Anything but a list of
    ``data:<type>/<subtype>;base64,<non-empty strict base64>`` strings is malformed.
    """
    if items is None:
        return []
    if not isinstance(items, list):
        return None
    out = []
    for item in items:
        match = _DATA_URI_RE.fullmatch(item) if isinstance(item, str) else None
        if match is None:
            return None
        try:
            data = base64.b64decode(match.group(2), validate=True)
        except (binascii.Error, ValueError):
            return None
        out.append({"mime": match.group(1), "data": data})
    return out


def submit_imagine(sub: Admitted) -> Outcome:
    """Validate an imagine and create its grid task.

    ``sub`` is the request as every submission route admitted it (:func:`submit.admit`); the answer is
    ``(response, accepted)`` like every route's.
    """
    cfg = sub.cfg
    refusal = check_prompt(sub.prompt)
    if refusal is not None:
        return refusal, False
    image_prompts = decode_image_prompts(sub.data.get("base64Array"))
    if image_prompts is None:
        return sub.flavor.bad_base64(), False
    bot_type = sub.data.get("botType") or "MID_JOURNEY"
    if bot_type not in BOT_TYPES:
        return code_resp(4, f"botType must be one of {', '.join(BOT_TYPES)}"), False
    return sub.accept(
        duration=image_duration(cfg),
        outcome_from=sub.prompt,
        kind="image",
        action="IMAGINE",
        prompt=sub.prompt,
        motion="",
        image="",
        batch_size=0,
        parent_id=None,
        index=None,
        image_prompts=image_prompts,
        bot_type=bot_type,
        image_colours=list(GRID_COLOURS),
    )
