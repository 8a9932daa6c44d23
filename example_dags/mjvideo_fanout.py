"""
Fan-out: one mapped task per prompt/image pair, each generated and awaited in the triggerer.

``SubmitVideoOperator.partial(...).expand_kwargs(...)`` submits one video per pair; the mapped
sensor ``.partial(...).expand(mj_task_id=generate.output)`` waits for each.
"""

from __future__ import annotations

import os

import pendulum
from airflow.sdk import DAG

from airflow_provider_mjvideo.operators.video import SubmitVideoOperator
from airflow_provider_mjvideo.sensors.video import MidjourneyTaskSensor

POLL_INTERVAL = float(os.environ.get("MJVIDEO_POLL_INTERVAL", "15"))

SHOTS = [
    {"prompt": "a hummingbird hovering over a red flower", "image": "https://cdn.example.com/shots/bird.png"},
    {"prompt": "waves rolling onto a black sand beach", "image": "https://cdn.example.com/shots/beach.png"},
    {"prompt": "a steaming cup of coffee on a windowsill", "image": "https://cdn.example.com/shots/coffee.png"},
]

with DAG(
    dag_id="mjvideo_fanout",
    description="Generate several Midjourney videos in parallel",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    tags=["midjourney", "example"],
) as dag:
    generate = SubmitVideoOperator.partial(task_id="generate", motion="low").expand_kwargs(SHOTS)
    wait = MidjourneyTaskSensor.partial(task_id="wait", deferrable=True, poke_interval=POLL_INTERVAL).expand(
        mj_task_id=generate.output
    )
