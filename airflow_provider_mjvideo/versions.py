"""
Which of the provider's features the installed Airflow can run, and the one message saying what a missing one needs.

Everything else works on Airflow 3.0+. Two features need 3.1: the Midjourney view (a plugin's ``external_views``
appear in the UI from 3.1 on) and :class:`~airflow_provider_mjvideo.operators.review.ChooseClipOperator` (the
standard provider's human-in-the-loop operators refuse to import below 3.1).
"""

from __future__ import annotations

from typing import Final

from airflow import __version__ as AIRFLOW_VERSION
from airflow.providers.common.compat.version_compat import AIRFLOW_V_3_1_PLUS

#: The Airflow release the Midjourney view and the human-in-the-loop operator need.
UI_AND_REVIEW_MIN_AIRFLOW: Final = "3.1"
#: Whether this Airflow has plugin external views and the human-in-the-loop operators.
HAS_UI_AND_REVIEW: Final[bool] = AIRFLOW_V_3_1_PLUS


def needs_airflow_3_1(feature: str) -> str | None:
    """
    ``None`` when this Airflow can run ``feature``, else the message that says what it needs.

    :param feature: what the caller offers, as a person names it (``"ChooseClipOperator"``).
    """
    if HAS_UI_AND_REVIEW:
        return None
    return (
        f"{feature} needs Airflow {UI_AND_REVIEW_MIN_AIRFLOW} or newer (this is Airflow {AIRFLOW_VERSION}); "
        "the rest of airflow-provider-mjvideo works on this version"
    )
