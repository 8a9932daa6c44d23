"""
OpenLineage for the provider's tasks: the Midjourney task and the saved clips as datasets.

Optional: the builders import ``apache-airflow-providers-openlineage`` (and its ``openlineage-python``)
inside the functions, so without that provider nothing here is imported and nothing breaks; the
naming functions need neither.

Dataset names, as OpenLineage's naming conventions and Airflow's own providers give them:

* a file on object storage (:func:`storage_dataset_id`), read through ``ObjectStoragePath`` as
  common-io's file transfer does: namespace ``<scheme>://<bucket>`` (a storage connection id before ``@``
  left out), name the key; a local file: namespace ``file``, name its absolute path (as common-io's
  ``file://`` asset converter does, so an ``Asset("file:///…")`` inlet names the same dataset);
* the Midjourney task (:func:`task_dataset_id`): namespace ``midjourney://<API host[:port]>``, name the
  task id;
* an input image on the web (:func:`url_dataset_id`): namespace ``<scheme>://<host[:port]>``, name its path
  (the query string, where signatures live, is dropped).

Standard facets: the prompt as the task dataset's ``documentation``, each clip's sha256 as its
``version``, its size as ``outputStatistics`` (``size``, ``fileCount`` 1), and the Midjourney task as the
run's ``externalQuery`` (``externalQueryId`` = task id, ``source`` = the task namespace).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import urlsplit

if TYPE_CHECKING:
    from airflow.providers.openlineage.extractors import OperatorLineage

log = logging.getLogger(__name__)

#: The namespace scheme of Midjourney tasks.
TASK_SCHEME: Final = "midjourney"
_LOCAL_SCHEMES: Final = ("", "file", "local")
_WEB_SCHEMES: Final = ("http", "https")


def task_dataset_id(api_base_url: str, mj_task_id: str) -> tuple[str, str]:
    """
    ``(namespace, name)`` of a Midjourney task: ``midjourney://<API host[:port]>`` and the task id.

    :param api_base_url: the connection's base URL (its path prefix and any credentials are left out).
    :param mj_task_id: the task id.
    """
    host = urlsplit(api_base_url).netloc.rsplit("@", 1)[-1]
    return f"{TASK_SCHEME}://{host}", str(mj_task_id)


def storage_dataset_id(uri: str) -> tuple[str, str]:
    """
    ``(namespace, name)`` of a stored file, from its ``ObjectStoragePath``.

    :param uri: the file's URI (``file:///…``, ``s3://[conn_id@]bucket/key``, ``gs://…``) or absolute path.
    """
    from airflow.providers.common.compat.sdk import ObjectStoragePath

    parts = urlsplit(uri)
    scheme = parts.scheme.lower()
    if scheme in _LOCAL_SCHEMES:
        local = parts.path if scheme else uri
        return (f"file://{parts.netloc}" if parts.netloc else "file"), "/" + local.lstrip("/")
    # No I/O: the filesystem is not resolved, so this works without the store's provider installed.
    stored = ObjectStoragePath(uri, protocol=scheme)
    bucket = str(stored.bucket).rsplit("@", 1)[-1]  # Airflow 3.0 keeps `conn_id@` in the bucket
    return (f"{stored.protocol}://{bucket}" if bucket else str(stored.protocol)), str(stored.key).lstrip("/")


def url_dataset_id(url: str) -> tuple[str, str] | None:
    """
    ``(namespace, name)`` of an input given as a URL or storage URI; ``None`` for a data URI or other text.

    :param url: an ``http(s)://`` URL, a storage URI, or a ``data:`` URI.
    """
    parts = urlsplit(str(url))
    scheme = parts.scheme.lower()
    if scheme in _WEB_SCHEMES and parts.hostname:
        return f"{scheme}://{parts.netloc.rsplit('@', 1)[-1]}", parts.path or "/"
    if scheme and scheme != "data" and "://" in str(url):
        return storage_dataset_id(str(url))
    return None


def _run_facets(namespace: str, mj_task_id: str) -> dict[str, Any]:
    from openlineage.client.facet_v2 import external_query_run

    return {"externalQuery": external_query_run.ExternalQueryRunFacet(externalQueryId=mj_task_id, source=namespace)}


def _prompt_facets(prompt: str | None) -> dict[str, Any]:
    from openlineage.client.facet_v2 import documentation_dataset

    return {"documentation": documentation_dataset.DocumentationDatasetFacet(description=prompt)} if prompt else {}


def download_lineage(
    api_base_url: str, mj_task_id: str, prompt: str | None, clips: Sequence[Mapping[str, Any]]
) -> OperatorLineage:
    """
    The lineage of a download: the Midjourney task in, one dataset per saved clip out.

    :param api_base_url: the connection's base URL.
    :param mj_task_id: the task whose clips were saved.
    :param prompt: its prompt (the task dataset's ``documentation`` facet).
    :param clips: the saved clips' entries (``path``, ``bytes``, ``sha256``).
    """
    from airflow.providers.openlineage.extractors import OperatorLineage
    from openlineage.client.event_v2 import InputDataset, OutputDataset
    from openlineage.client.facet_v2 import dataset_version_dataset, output_statistics_output_dataset

    namespace, name = task_dataset_id(api_base_url, mj_task_id)
    outputs = []
    for clip in clips:
        clip_namespace, clip_name = storage_dataset_id(str(clip["path"]))
        outputs.append(
            OutputDataset(
                namespace=clip_namespace,
                name=clip_name,
                facets={"version": dataset_version_dataset.DatasetVersionDatasetFacet(datasetVersion=clip["sha256"])},
                outputFacets={
                    "outputStatistics": output_statistics_output_dataset.OutputStatisticsOutputDatasetFacet(
                        size=int(clip["bytes"]), fileCount=1
                    )
                },
            )
        )
    return OperatorLineage(
        inputs=[InputDataset(namespace=namespace, name=name, facets=_prompt_facets(prompt))],
        outputs=outputs,
        run_facets=_run_facets(namespace, mj_task_id),
    )


def submit_lineage(
    api_base_url: str,
    mj_task_id: str,
    *,
    prompt: str | None = None,
    images: Sequence[str | None] = (),
    parent_id: str | None = None,
) -> OperatorLineage:
    """
    The lineage of a submission: its input images (URLs and storage paths; data URIs have no dataset) and
    parent task in, the Midjourney task out.

    :param api_base_url: the connection's base URL.
    :param mj_task_id: the submitted task.
    :param prompt: its prompt (the task dataset's ``documentation`` facet).
    :param images: the input images as given (first frame, end frame, reference images…).
    :param parent_id: the task it was made from (an extend's video, an action's grid).
    """
    from airflow.providers.openlineage.extractors import OperatorLineage
    from openlineage.client.event_v2 import InputDataset, OutputDataset

    namespace, name = task_dataset_id(api_base_url, mj_task_id)
    inputs = []
    for image in images:
        found = url_dataset_id(image) if image else None
        if found:
            inputs.append(InputDataset(namespace=found[0], name=found[1]))
    if parent_id:
        inputs.append(InputDataset(namespace=namespace, name=str(parent_id)))
    return OperatorLineage(
        inputs=inputs,
        outputs=[OutputDataset(namespace=namespace, name=name, facets=_prompt_facets(prompt))],
        run_facets=_run_facets(namespace, mj_task_id),
    )


def submit_facets_on_complete(operator: Any, task_instance: Any = None) -> OperatorLineage | None:
    """
    ``get_openlineage_facets_on_complete`` of a submit operator
    (:class:`~airflow_provider_mjvideo.operators.submit.MidjourneySubmitOperator`).

    Reads the operator's rendered prompt, input pictures and parent (:meth:`lineage_inputs`), and the id it
    ended with (``_result``, else ``_live_task_id``).

    :param operator: the operator that ran.
    :param task_instance: the task instance (unused: everything is on the operator).
    :returns: ``None`` when the operator has no task id (OpenLineage then keeps its default datasets).
    """
    mj_task_id = getattr(operator, "_result", None) or getattr(operator, "_live_task_id", None)
    if not mj_task_id:
        return None
    try:
        base_url = operator.hook.settings.base_url
        prompt, images, parent_id = operator.lineage_inputs()
    except Exception as err:  # the lineage of a finished task must never fail it
        log.warning("No OpenLineage datasets for Midjourney task %s: %s", mj_task_id, err)
        return None
    return submit_lineage(base_url, str(mj_task_id), prompt=prompt, images=images, parent_id=parent_id)
