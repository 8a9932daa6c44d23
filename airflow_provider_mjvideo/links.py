"""The operator extra link: the first video of a finished task, or the task itself before that."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from airflow.providers.common.compat.sdk import BaseOperatorLink, XCom

if TYPE_CHECKING:
    from airflow.providers.common.compat.sdk import TaskInstanceKey


class MidjourneyVideoLink(BaseOperatorLink):
    """
    "Midjourney video" button in the task's UI.

    Airflow 3 reads a link from XCom under :attr:`xcom_key`, so the operator stores it with
    :meth:`persist` as the task runs: the task's fetch URL once submitted, the first clip's URL once
    it succeeded. The stored URLs never carry the API key.
    """

    name: ClassVar[str] = "Midjourney video"

    @property
    def xcom_key(self) -> str:
        """The XCom key the link lives under."""
        return "mj_video_link"

    def get_link(self, operator: Any, *, ti_key: TaskInstanceKey) -> str:
        """Return the stored URL, or an empty string before the task has run."""
        value = XCom.get_value(ti_key=ti_key, key=self.xcom_key)
        return str(value) if value else ""

    @classmethod
    def persist(cls, context: Any, url: str) -> None:
        """
        Store the link's URL for this task instance.

        :param context: the task's Airflow context.
        :param url: the URL to show.
        """
        context["ti"].xcom_push(key=cls().xcom_key, value=url)
