"""API key checks (internal): which headers carry the key under each ``auth_style``."""

from __future__ import annotations

from email.message import Message

from airflow_provider_mjvideo.testing.emulator.config import EmulatorConfig


def authorized(headers: Message, cfg: EmulatorConfig) -> bool:
    """Return True when ``headers`` carry ``cfg.api_key`` the way ``cfg.auth_style`` demands."""
    key = cfg.api_key
    authorization = headers.get("Authorization")
    secret = headers.get("mj-api-secret")
    bearer = False
    if authorization is not None:
        scheme, _, token = authorization.strip().partition(" ")
        bearer = scheme.lower() == "bearer" and token.strip() == key
    raw = authorization is not None and authorization.strip() == key
    has_secret = secret is not None and secret.strip() == key
    style = cfg.auth_style
    if style == "bearer":
        return bearer
    if style == "mj-api-secret":
        return has_secret
    if style == "raw":
        # trueai reads the key raw, or from mj-api-secret; "Bearer <key>" is not the key there.
        return raw or has_secret
    return bearer or raw or has_secret
