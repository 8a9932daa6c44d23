"""
Chain: generate a video from an image, then extend it twice, waiting in the triggerer each time.

    generate → wait_generate → extend_1 → wait_extend_1 → extend_2 → wait_extend_2 → save_clips[0..2]

Each extend takes its parent from the previous submission's XCom (``<task>.output``) and extends
clip ``index=0``. All waits are deferrable. The DAG ends by saving the clips of all three videos
(the final extend's among them) with a ``manifest.json`` and an ``index.html`` gallery under
``<destination>/mjvideo_chain/<run id>/``; the three mapped downloads may run at the same time.
Each download updates the ``mjvideo_clips`` asset: its event's extra lists the clips it saved (path,
bytes, sha256), and ``mjvideo_publish`` runs on it.
``<destination>`` is the ``destination`` DAG param, else the ``mjvideo_destination`` Airflow
Variable, else ``file:///tmp/mjvideo``.

Runs unedited against the local emulator with ``./dev.sh demo``; against a real server, set the
``midjourney_default`` connection.
"""

from __future__ import annotations

import os

import pendulum
from airflow.sdk import DAG, Asset, Param, task

from airflow_provider_mjvideo.operators.video import DownloadVideoOperator, SubmitVideoOperator
from airflow_provider_mjvideo.sensors.video import MidjourneyTaskSensor

#: Seconds between status polls; videos take minutes on a real server, seconds on the emulator.
POLL_INTERVAL = float(os.environ.get("MJVIDEO_POLL_INTERVAL", "15"))
#: Where the clips go: the DAG param, else the Airflow Variable, else a local folder; one folder per run.
DESTINATION = (
    "{{ params.destination or var.value.get('mjvideo_destination', 'file:///tmp/mjvideo') }}"
    "/{{ dag.dag_id }}/{{ run_id | replace(':', '-') | replace('+', '-') }}/"
)
#: The saved clips, as an Airflow asset: every download's event carries what it saved.
CLIPS = Asset("mjvideo_clips")

with DAG(
    dag_id="mjvideo_chain",
    description="Generate a Midjourney video and extend it twice",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    tags=["midjourney", "example"],
    params={
        "prompt": Param("a paper boat drifting down a rainy street, cinematic", type="string", minLength=1),
        "image": Param("https://cdn.example.com/first-frames/paper-boat.png", type="string"),
        "destination": Param(
            None,
            type=["null", "string"],
            description="Base folder URI for the clips (file://, s3://…); default: the mjvideo_destination "
            "Variable, else file:///tmp/mjvideo",
        ),
    },
) as dag:
    generate = SubmitVideoOperator(
        task_id="generate",
        prompt="{{ params.prompt }}",
        image="{{ params.image }}",
        motion="low",
    )
    wait_generate = MidjourneyTaskSensor(
        task_id="wait_generate", mj_task_id=generate.output, deferrable=True, poke_interval=POLL_INTERVAL
    )
    extend_1 = SubmitVideoOperator(
        task_id="extend_1",
        action="extend",
        index=0,
        mj_task_id=generate.output,
        prompt="the boat reaches a glowing harbour at dusk",
        motion="low",
    )
    wait_extend_1 = MidjourneyTaskSensor(
        task_id="wait_extend_1", mj_task_id=extend_1.output, deferrable=True, poke_interval=POLL_INTERVAL
    )
    extend_2 = SubmitVideoOperator(
        task_id="extend_2",
        action="extend",
        index=0,
        mj_task_id=extend_1.output,
        prompt="fireworks burst above the harbour, reflections on the water",
        motion="high",
    )
    wait_extend_2 = MidjourneyTaskSensor(
        task_id="wait_extend_2", mj_task_id=extend_2.output, deferrable=True, poke_interval=POLL_INTERVAL
    )

    @task
    def chain_ids(*ids: str) -> list[str]:
        """The ids of every video of the chain, in order, for the mapped download."""
        return [str(mj_task_id) for mj_task_id in ids]

    # One download per video, all at once into one folder: each writes only its own clips and
    # manifests/<task id>.json, then rebuilds the shared manifest.json and gallery from every task's.
    save_clips = DownloadVideoOperator.partial(task_id="save_clips", destination=DESTINATION, outlets=[CLIPS]).expand(
        mj_task_id=chain_ids(generate.output, extend_1.output, extend_2.output)
    )

    generate >> wait_generate >> extend_1 >> wait_extend_1 >> extend_2 >> wait_extend_2 >> save_clips
