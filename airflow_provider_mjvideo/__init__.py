"""Apache Airflow provider for Midjourney video generation (midjourney-proxy compatible APIs)."""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
