"""Test helpers: a local HTTP emulator of midjourney-proxy style video APIs (stdlib only)."""

from __future__ import annotations

from airflow_provider_mjvideo.testing.emulator import (
    EmulatorConfig,
    FaultConfig,
    MidjourneyEmulator,
    RecordedRequest,
)

__all__ = ["EmulatorConfig", "FaultConfig", "MidjourneyEmulator", "RecordedRequest"]
