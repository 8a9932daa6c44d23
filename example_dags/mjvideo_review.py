"""
Review: a person approves the spend, then picks in the Airflow UI which clip of the video to extend.

    approve → generate → wait_generate → choose → extend → wait_extend → save_clips[0..1]

Nothing is paid before someone presses **Approve** on the ``approve`` task's "Required actions" (Reject skips
the rest of the run). ``choose`` offers the new video's clips (``clip 0`` … ``clip 3``, with links to each and to
the Midjourney view) and returns the chosen index, which the extend takes as its ``index``. Without an answer
within a day, ``choose`` takes clip 0. The run ends by saving both videos' clips (a manifest and a gallery) under
``<destination>/mjvideo_review/<run id>/``, where the Midjourney view plays them. ``<destination>`` is the
``destination`` DAG param, else the ``mjvideo_destination`` Airflow Variable, else ``file:///tmp/mjvideo``.

Needs Airflow 3.1+ (human-in-the-loop operators). On Airflow 3.0 this file defines no DAG, so the DAG processor
reports no import error; :data:`SKIPPED` holds the reason, which is also logged when the file is parsed.
"""

from __future__ import annotations

import logging
import os
from datetime import timedelta

import pendulum
from airflow.providers.common.compat.sdk import AirflowOptionalProviderFeatureException
from airflow.sdk import DAG, Param, task

from airflow_provider_mjvideo.operators.download import DownloadVideoOperator
from airflow_provider_mjvideo.operators.video import SubmitVideoOperator
from airflow_provider_mjvideo.sensors.video import MidjourneyTaskSensor

try:
    from airflow_provider_mjvideo.operators.review import ChooseClipOperator
except AirflowOptionalProviderFeatureException as needs_3_1:
    SKIPPED: str | None = f"mjvideo_review is not defined: {needs_3_1}"
    logging.getLogger(__name__).warning(SKIPPED)
else:
    from airflow.providers.standard.operators.hitl import ApprovalOperator

    SKIPPED = None

#: Seconds between status polls; videos take minutes on a real server, seconds on the emulator.
POLL_INTERVAL = float(os.environ.get("MJVIDEO_POLL_INTERVAL", "15"))
#: Where the clips go: the DAG param, else the Airflow Variable, else a local folder; one folder per run.
DESTINATION = (
    "{{ params.destination or var.value.get('mjvideo_destination', 'file:///tmp/mjvideo') }}"
    "/{{ dag.dag_id }}/{{ run_id | replace(':', '-') | replace('+', '-') }}/"
)

if SKIPPED is None:
    with DAG(
        dag_id="mjvideo_review",
        description="A person approves a Midjourney video, then picks the clip to extend",
        schedule=None,
        start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
        catchup=False,
        tags=["midjourney", "example", "human-in-the-loop"],
        params={
            "prompt": Param("a lighthouse on a cliff at night, waves crashing", type="string", minLength=1),
            "image": Param("https://cdn.example.com/first-frames/lighthouse.png", type="string"),
            "extend_prompt": Param("the beam sweeps over a passing ship", type="string", minLength=1),
            "destination": Param(
                None,
                type=["null", "string"],
                description="Base folder URI for the clips (file://, s3://…); default: the mjvideo_destination "
                "Variable, else file:///tmp/mjvideo",
            ),
        },
    ) as dag:
        approve = ApprovalOperator(
            task_id="approve",
            subject="Pay for a Midjourney video?",
            body="Prompt: **{{ params.prompt }}**\n\nFirst frame: {{ params.image }}\n\n"
            "Approve to submit the video (and, after you pick a clip, one extend); Reject skips the run.",
        )
        generate = SubmitVideoOperator(
            task_id="generate", prompt="{{ params.prompt }}", image="{{ params.image }}", motion="low"
        )
        wait_generate = MidjourneyTaskSensor(
            task_id="wait_generate", mj_task_id=generate.output, deferrable=True, poke_interval=POLL_INTERVAL
        )
        choose = ChooseClipOperator(
            task_id="choose",
            mj_task_id=generate.output,
            subject="Which clip of the lighthouse video should go on?",
            defaults=0,
            timeout=timedelta(days=1),
        )
        extend = SubmitVideoOperator(
            task_id="extend",
            action="extend",
            mj_task_id=generate.output,
            index=choose.output,  # the chosen clip, an int
            prompt="{{ params.extend_prompt }}",
            motion="low",
        )
        wait_extend = MidjourneyTaskSensor(
            task_id="wait_extend", mj_task_id=extend.output, deferrable=True, poke_interval=POLL_INTERVAL
        )

        @task
        def both_videos(*ids: str) -> list[str]:
            """The generated video and its extension, for the mapped download."""
            return [str(mj_task_id) for mj_task_id in ids]

        save_clips = DownloadVideoOperator.partial(task_id="save_clips", destination=DESTINATION).expand(
            mj_task_id=both_videos(generate.output, extend.output)
        )

        approve >> generate >> wait_generate >> choose >> extend >> wait_extend >> save_clips
