"""
Daily: one video per day from a templated prompt and a templated first frame.

The prompt and the image URL are Jinja templates rendered per run (``{{ ds }}`` is the run's date),
so the same DAG produces a dated series. Catchup is off: a paused week does not buy seven videos.
"""

from __future__ import annotations

import os

import pendulum
from airflow.sdk import DAG, Param

from airflow_provider_mjvideo.operators.video import SubmitVideoOperator
from airflow_provider_mjvideo.sensors.video import MidjourneyTaskSensor

POLL_INTERVAL = float(os.environ.get("MJVIDEO_POLL_INTERVAL", "30"))

with DAG(
    dag_id="mjvideo_daily",
    description="One Midjourney video per day",
    schedule="@daily",
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    tags=["midjourney", "example"],
    params={"image_base": Param("https://cdn.example.com/daily-frames", type="string")},
) as dag:
    generate = SubmitVideoOperator(
        task_id="generate",
        prompt="the city skyline on {{ ds }}, slow drifting clouds, golden hour",
        image="{{ params.image_base }}/{{ ds_nodash }}.png",
        motion="low",
        extra_body={"batchSize": 4},
    )
    wait = MidjourneyTaskSensor(
        task_id="wait", mj_task_id=generate.output, poke_interval=POLL_INTERVAL, timeout=3600, mode="reschedule"
    )
    generate >> wait
