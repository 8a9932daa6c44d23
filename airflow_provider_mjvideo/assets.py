"""
The asset events of the provider's tasks: what their ``extra`` holds, how it is attached, how it is read back.

Any task of this provider may take ``outlets=[Asset(...)]``; Airflow then records one asset event per
successful task instance, and DAGs scheduled on the asset run. This module fills the event's ``extra``
through the task's ``context["outlet_events"][asset].extra`` (Airflow 3.0-3.3 alike). ``Metadata`` is
not used: Airflow collects it only from the values a ``@task`` *generator* yields, which an operator's
``execute`` is not.

What ``extra`` holds (plain JSON; never a clip's signed URL, never the key):

* a download (:func:`download_extra`): ``mj_task_id``, ``prompt``, ``action`` (``video``, ``extend`` or
  ``image``), ``mj_action`` (the server's word), ``parent_id``, and ``clips``: one ``{"index", "path",
  "bytes", "sha256"}`` per saved clip, ``path`` being the file's storage URI;
* a submission (:func:`submit_extra`): ``mj_task_id``, ``prompt``, ``action``, ``parent_id``, ``status``,
  ``urls`` (how many result URLs the finished task has) and ``usage`` (see :mod:`~airflow_provider_mjvideo.usage`).

A downstream DAG reads the clips of its triggering events with :func:`clips_from_events`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import urlsplit, urlunsplit

from airflow_provider_mjvideo import __version__

if TYPE_CHECKING:
    from airflow.providers.common.compat.sdk import Context

    from airflow_provider_mjvideo.models import MidjourneyTask

#: Who wrote the extra (readers may check it before trusting its shape).
GENERATOR: Final = f"airflow-provider-mjvideo {__version__}"
#: The keys of one clip in a download's extra.
CLIP_KEYS: Final = ("index", "path", "bytes", "sha256")


def without_secrets(uri: str) -> str:
    """
    A URI without what may carry a credential: the query string and fragment (signatures, tokens) and the
    password part of its user information (a storage connection id before ``@`` stays).

    :param uri: a URL or storage URI.
    """
    parts = urlsplit(str(uri))
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, host = netloc.rsplit("@", 1)
        netloc = f"{userinfo.split(':', 1)[0]}@{host}"
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def action_label(mj_action: str | None, kind: str | None, parent_id: str | None) -> str:
    """
    What a task did, in the asset event's words: ``image`` (pictures), ``extend`` (a clip made longer) or ``video``.

    :param mj_action: the server's action (``VIDEO``, ``VIDEO_EXTEND``, ``IMAGINE``…), if known.
    :param kind: the task's kind (``image``/``video``), if known.
    :param parent_id: the task it was made from, if any.
    """
    if kind == "image":
        return "image"
    if mj_action == "VIDEO_EXTEND" or parent_id:
        return "extend"
    return "video"


def _json(extra: Mapping[str, Any]) -> dict[str, Any]:
    """``extra`` as plain JSON values (Airflow stores the event's extra as JSON); fails loudly on anything else."""
    return dict(json.loads(json.dumps(dict(extra), allow_nan=False)))


def download_extra(task: MidjourneyTask, clips: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """
    The extra of a download's asset event.

    :param task: the finished task whose clips were saved.
    :param clips: the saved clips' manifest entries (``index``, ``path``, ``bytes``, ``sha256``; more keys are
        dropped, the URL among them).
    """
    parent_id = task.parent_id
    return _json(
        {
            "generator": GENERATOR,
            "mj_task_id": task.id,
            "prompt": task.prompt,
            "action": action_label(task.action.value, task.kind, parent_id),
            "mj_action": task.action.value,
            "parent_id": parent_id,
            "clips": [
                {key: without_secrets(clip[key]) if key == "path" else clip[key] for key in CLIP_KEYS} for clip in clips
            ],
        }
    )


def submit_extra(
    summary: Mapping[str, Any], *, parent_id: str | None = None, usage: Sequence[Mapping[str, Any]] | None = None
) -> dict[str, Any]:
    """
    The extra of a submit operator's asset event, from the finished task's summary.

    :param summary: :meth:`MidjourneyTask.to_summary` of the finished task.
    :param parent_id: the task it was made from (an extend's parent video, an action's grid), when the
        operator knows it.
    :param usage: the task instance's usage ledger (:func:`~airflow_provider_mjvideo.usage.record_submit`).
    """
    kind = summary.get("kind")
    urls = summary.get("image_urls") if kind == "image" else summary.get("video_urls")
    return _json(
        {
            "generator": GENERATOR,
            "mj_task_id": str(summary["id"]),
            "prompt": summary.get("prompt"),
            "action": action_label(summary.get("action"), kind, parent_id),
            "mj_action": summary.get("action"),
            "parent_id": parent_id,
            "status": summary.get("status"),
            "urls": len(urls or []),
            "usage": [dict(record) for record in usage or []],
        }
    )


def asset_outlets(context: Context) -> list[Any]:
    """
    The ``Asset`` outlets of the running task (aliases and other outlets are left alone).

    :param context: the task's context.
    """
    from airflow.providers.common.compat.sdk import Asset

    task = context.get("task")
    return [outlet for outlet in getattr(task, "outlets", None) or [] if isinstance(outlet, Asset)]


def attach_extra(context: Context, extra: Mapping[str, Any]) -> list[Any]:
    """
    Merge ``extra`` into the asset event of every ``Asset`` outlet of the running task.

    Keys already set (by an earlier call in the same run of the task, or by the DAG author) are updated,
    others kept. Call it from the leg of the task that succeeds: a deferred task's events are those of the
    leg that resumes.

    :param context: the task's context.
    :param extra: plain JSON values.
    :returns: the assets whose event got the extra.
    """
    outlets = asset_outlets(context)
    if outlets:
        values = _json(extra)
        for asset in outlets:
            context["outlet_events"][asset].extra.update(values)
    return outlets


def attach_submit_extra(context: Context, summary: Mapping[str, Any], *, parent_id: str | None = None) -> None:
    """
    The one call a submit operator makes when its task finished: the submission's extra, with the task
    instance's usage ledger read back from XCom (so a wait that deferred still reports it).

    :param context: the task's context.
    :param summary: :meth:`MidjourneyTask.to_summary` of the finished task.
    :param parent_id: the task it was made from, when the operator knows it.
    """
    # Imported here: usage attaches its records through this module.
    from airflow_provider_mjvideo.usage import current_ledger

    if asset_outlets(context):
        attach_extra(context, submit_extra(summary, parent_id=parent_id, usage=current_ledger(context)))


def _field(event: Any, name: str) -> Any:
    return event.get(name) if isinstance(event, Mapping) else getattr(event, name, None)


def clips_from_events(events: Iterable[Any]) -> list[dict[str, Any]]:
    """
    Every clip the given asset events report, for a DAG scheduled on the clips' asset.

    Accepts the values of ``context["triggering_asset_events"]`` (lists of events) or events themselves,
    as objects with ``extra`` and ``source_*`` attributes or as dicts. Events without clips (a submission's,
    another tool's) are skipped.

    :param events: asset events, or lists of them.
    :returns: one dict per clip, in event order: ``mj_task_id``, ``prompt``, ``action``, the clip's
        ``index``, ``path``, ``bytes``, ``sha256``, and the producing task instance (``source_dag_id``,
        ``source_run_id``, ``source_task_id``, ``source_map_index``).
    """
    clips: list[dict[str, Any]] = []
    for item in events:
        for event in item if isinstance(item, (list, tuple)) else [item]:
            extra = _field(event, "extra") or {}
            if not isinstance(extra, Mapping) or not isinstance(extra.get("clips"), list):
                continue
            source = {
                name: _field(event, name)
                for name in ("source_dag_id", "source_run_id", "source_task_id", "source_map_index")
            }
            for clip in extra["clips"]:
                if isinstance(clip, Mapping) and all(key in clip for key in CLIP_KEYS):
                    clips.append(
                        {
                            "mj_task_id": extra.get("mj_task_id"),
                            "prompt": extra.get("prompt"),
                            "action": extra.get("action"),
                            **{key: clip[key] for key in CLIP_KEYS},
                            **source,
                        }
                    )
    return clips
