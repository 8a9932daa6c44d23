"""
From a prompt alone to saved clips: imagine a grid, upscale one image, animate it, extend the video.

    imagine → wait_imagine → upscale → wait_upscale → animate → wait_animate → extend → wait_extend → save[0..3]

``imagine`` makes a 2x2 grid from the ``prompt`` DAG param; ``upscale`` upscales image ``index`` of it (a DAG
param, 0-based: 0 is Midjourney's U1); ``animate`` makes a video whose first frame is the upscale
(``image_task_id=upscale.output``, no template needed); ``extend`` continues its clip 0. Every wait is
deferrable (``MJVIDEO_DEFERRABLE=false`` polls from the worker instead). ``save`` stores the grid, the
upscaled image and every clip of both videos, with a gallery
showing the pictures beside the clips, under ``<destination>/mjvideo_from_prompt/<run id>/``
(``<destination>``: the DAG param, else the ``mjvideo_destination`` Variable, else ``file:///tmp/mjvideo``).

``./dev.sh demo`` runs it against the local emulator; against a real server, set ``midjourney_default``
(the server needs the image routes and video: trueai-style proxies and new-api gateways).
"""

from __future__ import annotations

import os

import pendulum
from airflow.sdk import DAG, Param, task

from airflow_provider_mjvideo.operators.image import SubmitImagineOperator, UpscaleImageOperator
from airflow_provider_mjvideo.operators.video import DownloadVideoOperator, SubmitVideoOperator
from airflow_provider_mjvideo.sensors.video import MidjourneyTaskSensor

#: Seconds between status polls; jobs take minutes on a real server, seconds on the emulator.
POLL_INTERVAL = float(os.environ.get("MJVIDEO_POLL_INTERVAL", "15"))
#: Wait in the triggerer (the default) or, with MJVIDEO_DEFERRABLE=false, poll from a worker slot.
DEFERRABLE = os.environ.get("MJVIDEO_DEFERRABLE", "true").strip().lower() not in ("false", "0", "no")
DESTINATION = (
    "{{ params.destination or var.value.get('mjvideo_destination', 'file:///tmp/mjvideo') }}"
    "/{{ dag.dag_id }}/{{ run_id | replace(':', '-') | replace('+', '-') }}/"
)

with DAG(
    dag_id="mjvideo_from_prompt",
    description="Imagine, upscale, animate and extend: a Midjourney video from a prompt alone",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    tags=["midjourney", "example"],
    params={
        "prompt": Param("a lighthouse on a cliff at dawn, watercolour", type="string", minLength=1),
        "index": Param(0, type="integer", minimum=0, maximum=3, description="which grid image to upscale (0 = U1)"),
        "video_prompt": Param("waves crash below the lighthouse, the light turns", type="string", minLength=1),
        "destination": Param(
            None,
            type=["null", "string"],
            description="Base folder URI for the pictures and clips (file://, s3://…); default: the "
            "mjvideo_destination Variable, else file:///tmp/mjvideo",
        ),
    },
) as dag:
    imagine = SubmitImagineOperator(task_id="imagine", prompt="{{ params.prompt }}")
    wait_imagine = MidjourneyTaskSensor(
        task_id="wait_imagine", mj_task_id=imagine.output, deferrable=DEFERRABLE, poke_interval=POLL_INTERVAL
    )
    upscale = UpscaleImageOperator(task_id="upscale", mj_task_id=imagine.output, index="{{ params.index }}")
    wait_upscale = MidjourneyTaskSensor(
        task_id="wait_upscale", mj_task_id=upscale.output, deferrable=DEFERRABLE, poke_interval=POLL_INTERVAL
    )
    animate = SubmitVideoOperator(
        task_id="animate", image_task_id=upscale.output, prompt="{{ params.video_prompt }}", motion="low"
    )
    wait_animate = MidjourneyTaskSensor(
        task_id="wait_animate", mj_task_id=animate.output, deferrable=DEFERRABLE, poke_interval=POLL_INTERVAL
    )
    extend = SubmitVideoOperator(
        task_id="extend",
        action="extend",
        index=0,
        mj_task_id=animate.output,
        prompt="the sun rises over the sea, gulls circle the light",
        motion="high",
    )
    wait_extend = MidjourneyTaskSensor(
        task_id="wait_extend", mj_task_id=extend.output, deferrable=DEFERRABLE, poke_interval=POLL_INTERVAL
    )

    @task
    def made(*ids: str) -> list[str]:
        """The ids of every task of the run that made something worth keeping, in order."""
        return [str(mj_task_id) for mj_task_id in ids]

    # The grid, the upscale and both videos, saved side by side (downloads of different tasks may share a folder).
    save = DownloadVideoOperator.partial(task_id="save", destination=DESTINATION).expand(
        mj_task_id=made(imagine.output, upscale.output, animate.output, extend.output)
    )

    imagine >> wait_imagine >> upscale >> wait_upscale >> animate >> wait_animate >> extend >> wait_extend >> save
