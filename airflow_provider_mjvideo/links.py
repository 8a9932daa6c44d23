"""The operators' extra links: a finished task's video or picture, or the task itself before that."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from airflow.providers.common.compat.sdk import BaseOperatorLink, XCom

if TYPE_CHECKING:
    from airflow.providers.common.compat.sdk import TaskInstanceKey


class MidjourneyLink(BaseOperatorLink):
    """
    A button in the task's UI whose URL the operator stores as it runs.

    Airflow 3 reads a link from XCom under :attr:`xcom_key`, so the operator stores it with :meth:`persist`:
    the task's fetch URL once submitted, the result's URL once it succeeded. Stored URLs never carry the key.
    """

    name: ClassVar[str] = "Midjourney task"
    #: The XCom key the link lives under.
    key: ClassVar[str] = "mj_link"

    @property
    def xcom_key(self) -> str:
        """The XCom key the link lives under."""
        return self.key

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
        context["ti"].xcom_push(key=cls.key, value=url)


class MidjourneyVideoLink(MidjourneyLink):
    """ "Midjourney video": the first clip of a finished video, or the task before that."""

    name: ClassVar[str] = "Midjourney video"
    key: ClassVar[str] = "mj_video_link"


class MidjourneyImageLink(MidjourneyLink):
    """ "Midjourney image": the picture of a finished image task (a grid, an upscale), or the task before that."""

    name: ClassVar[str] = "Midjourney image"
    key: ClassVar[str] = "mj_image_link"
