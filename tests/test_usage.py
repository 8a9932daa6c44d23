"""
Usage accounting: the ledger each submit task instance keeps (XCom ``mj_usage``), its sums, and ``mjvideo-usage``.

The counts are checked against the emulator's accepted submissions, across retries that reattach, take a
finished task or submit again (real retries in ``dag.test()``).
"""

from __future__ import annotations

import datetime
import io
import json
from collections.abc import Callable
from typing import Any

import pendulum
import pytest
from airflow.providers.common.compat.version_compat import AIRFLOW_V_3_3_PLUS
from airflow.sdk import DAG
from helpers.dag_runs import task_states, xcom_value

from airflow_provider_mjvideo.operators.video import SubmitVideoOperator
from airflow_provider_mjvideo.testing import MidjourneyEmulator
from airflow_provider_mjvideo.usage import USAGE_XCOM_KEY, MidjourneyUsage, UsageEntry, UsageRecord, entries_from_rows
from airflow_provider_mjvideo.usage_cli import main as usage_cli

START = pendulum.datetime(2026, 1, 1, tz="UTC")
IMAGE = "https://cdn.example.com/frames/boat.png"
NO_DELAY = datetime.timedelta(seconds=0)
#: What the first try does with its submitted task before it "crashes" (per test).
FIRST_TRY: dict[str, Callable[[str], None]] = {}


class _CrashAfterSubmit(SubmitVideoOperator):
    """The first try raises once its id is stored: what a lost worker looks like to the next try."""

    def poll_until_complete(self, external_id: Any, context: Any) -> str:  # type: ignore[override]
        if context["ti"].try_number == 1:
            FIRST_TRY.get("hook", lambda _id: None)(str(external_id))
            raise RuntimeError(f"worker lost after submitting {external_id}")
        return super().poll_until_complete(external_id, context)


def record(**fields: Any) -> UsageRecord:
    values: dict[str, Any] = {
        "route": "/mj/submit/video",
        "action": "video",
        "mj_task_id": "1",
        "conn_id": "midjourney_default",
        "mode": None,
        "batch_size": None,
        "reattach": False,
        "submitted_at": "2026-12-01T10:00:00+00:00",
        "try_number": 1,
    }
    values.update(fields)
    return UsageRecord(**values)


def entry(dag_id: str = "d", task_id: str = "submit", map_index: int = -1, **fields: Any) -> UsageEntry:
    return UsageEntry(dag_id, "run", task_id, map_index, record(**fields))


# ------------------------------------------------------------------------------------------ retries


@pytest.mark.parametrize(
    ("first_try", "ledger_3_3", "accepted"),
    [
        pytest.param(None, [(1, False), (0, True)], 1, id="retry-reattaches"),
        pytest.param("complete", [(1, False), (0, True)], 1, id="retry-takes-the-finished-task"),
        pytest.param("fail", [(1, False), (1, False)], 2, id="retry-submits-after-a-failure"),
    ],
)
def test_the_ledger_counts_what_every_try_paid_for(
    run_dag: Any,
    emulator: MidjourneyEmulator,
    request: pytest.FixtureRequest,
    first_try: str | None,
    ledger_3_3: list[tuple[int, bool]],
    accepted: int,
) -> None:
    emulator.config.video_duration = 1.0
    FIRST_TRY["hook"] = {"complete": emulator.complete_task, "fail": emulator.fail_task}.get(
        first_try or "", lambda _id: None
    )
    try:
        with DAG(f"usage_{request.node.callspec.id.replace('-', '_')}", schedule=None, start_date=START) as dag:
            _CrashAfterSubmit(task_id="submit", prompt="a boat", image=IMAGE, retries=1, retry_delay=NO_DELAY)
        run = run_dag(dag)
    finally:
        FIRST_TRY.clear()

    assert task_states(run)[("submit", -1)] == ("success", 2)
    ledger = xcom_value(run, "submit", USAGE_XCOM_KEY)
    usage = MidjourneyUsage.from_db(dag_id=run.dag_id, run_id=run.run_id)
    if AIRFLOW_V_3_3_PLUS:
        assert [(r["count"], r["reattach"]) for r in ledger] == ledger_3_3
        assert [r["try_number"] for r in ledger] == [1, 2]
        assert emulator.counters["submit_accepted"] == accepted == usage.total
    else:
        # No task_state_store: every try submits, and the first try's record went with its XComs.
        assert [(r["count"], r["reattach"], r["try_number"]) for r in ledger] == [(1, False, 2)]
        assert emulator.counters["submit_accepted"] == 2
        assert usage.total == 1
    assert {r["mj_task_id"] for r in ledger} <= set(emulator.tasks)
    assert ledger[-1]["mj_task_id"] == xcom_value(run, "submit")


def test_a_record_names_route_mode_batch_size_and_connection(
    run_dag: Any, emulator: MidjourneyEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    from helpers import connection_json

    monkeypatch.setenv("AIRFLOW_CONN_MJ_RELAX", connection_json(emulator, mode="relax"))
    with DAG("usage_record_fields", schedule=None, start_date=START) as dag:
        SubmitVideoOperator(
            task_id="submit", prompt="a boat", image=IMAGE, extra_body={"batchSize": 2}, midjourney_conn_id="mj_relax"
        )
    run = run_dag(dag)

    (only,) = xcom_value(run, "submit", USAGE_XCOM_KEY)
    submitted_at = datetime.datetime.fromisoformat(only.pop("submitted_at"))
    assert abs((submitted_at - datetime.datetime.now(datetime.timezone.utc)).total_seconds()) < 120
    assert only == {
        "count": 1,
        "route": "/mj/submit/video",
        "action": "video",
        "mj_task_id": xcom_value(run, "submit"),
        "conn_id": "mj_relax",
        "mode": "relax",
        "batch_size": 2,
        "reattach": False,
        "try_number": 1,
    }
    assert emulator.requests_to("submit")[0].path == "/mj-relax/mj/submit/video"


# ------------------------------------------------------------------------------------------ sums


ENTRIES = [
    entry(dag_id="daily", map_index=0, mj_task_id="1"),
    entry(dag_id="daily", map_index=1, mj_task_id="2", submitted_at="2026-12-02T09:00:00+00:00"),
    entry(
        dag_id="daily",
        map_index=1,
        mj_task_id="2",
        reattach=True,
        submitted_at="2026-12-02T09:00:00+00:00",
        try_number=2,
    ),
    entry(dag_id="chain", task_id="extend", mj_task_id="3", action="extend", conn_id="mj_other"),
    entry(dag_id="chain", task_id="generate", mj_task_id="4", mode="fast"),
]


@pytest.mark.parametrize(
    ("by", "rows"),
    [
        (
            ("dag_id", "conn_id", "day"),
            [
                ("chain", "midjourney_default", "2026-12-01", 1, 0, 1),
                ("chain", "mj_other", "2026-12-01", 1, 0, 1),
                ("daily", "midjourney_default", "2026-12-01", 1, 0, 1),
                ("daily", "midjourney_default", "2026-12-02", 1, 1, 1),
            ],
        ),
        (("dag_id",), [("chain", 2, 0, 2), ("daily", 2, 1, 2)]),
        (("action",), [("extend", 1, 0, 1), ("video", 3, 1, 3)]),
        (("mode",), [("None", 3, 1, 3), ("fast", 1, 0, 1)]),
    ],
)
def test_summarize_sums_paid_submissions_and_reattaches_per_group(by: tuple[str, ...], rows: list[tuple]) -> None:
    usage = MidjourneyUsage(ENTRIES)

    summary = usage.summarize(by)

    assert [
        (*(str(row[key]) for key in by), row["submits"], row["reattached"], row["task_instances"]) for row in summary
    ] == [(*(str(part) for part in row[:-3]), *row[-3:]) for row in rows]
    assert usage.total == sum(row["submits"] for row in summary) == 4


def test_between_keeps_the_days_asked_for() -> None:
    usage = MidjourneyUsage(ENTRIES)
    assert usage.between(since="2026-12-02").total == 1
    assert usage.between(until=datetime.date(2026, 12, 1)).total == 3
    assert usage.between("2026-12-03").entries == []


@pytest.mark.parametrize("by", [(), ("colour",), ("dag_id", "pool")])
def test_summarize_refuses_unknown_groups(by: tuple[str, ...]) -> None:
    with pytest.raises(ValueError, match="group usage by"):
        MidjourneyUsage(ENTRIES).summarize(by)


def test_the_table_has_a_line_per_group_and_a_total() -> None:
    table = MidjourneyUsage(ENTRIES).table(("dag_id",))
    assert table.splitlines() == [
        "dag_id  submits  reattached  task_instances",
        "------  -------  ----------  --------------",
        "chain   2        0           2",
        "daily   2        1           2",
        "total   4        1",
    ]


def test_records_round_trip_and_rows_from_any_source_are_read_tolerantly() -> None:
    one = record(batch_size=4, mode="turbo")
    assert UsageRecord.from_dict(one.to_dict()) == one
    assert one.to_dict()["count"] == 1
    with pytest.raises(ValueError, match="not a usage record"):
        UsageRecord.from_dict({"route": "/mj/submit/video"})
    rows = [
        ("d", "r", "t", -1, [one.to_dict()]),
        ("d", "r", "t", 0, json.dumps([one.to_dict(), {"garbage": True}, "text"])),  # JSON text, as some DBs return
        ("d", "r", "t", 1, "not json"),
        ("d", "r", "t", 2, {"not": "a list"}),
    ]
    assert [(e.map_index, e.record) for e in entries_from_rows(rows)] == [(-1, one), (0, one)]


# ------------------------------------------------------------------------------------------ the CLI


def test_the_cli_prints_the_runs_usage_from_the_metadata_database(run_dag: Any, emulator: MidjourneyEmulator) -> None:
    with DAG("usage_cli_two_videos", schedule=None, start_date=START) as dag:
        SubmitVideoOperator.partial(task_id="submit", image=IMAGE).expand(prompt=["a boat", "a lighthouse"])
    run = run_dag(dag)
    assert emulator.counters["submit_accepted"] == 2

    out = io.StringIO()
    assert usage_cli(["--dag-id", run.dag_id, "--run-id", run.run_id, "--by", "dag_id,task_id", "--json"], out) == 0
    assert json.loads(out.getvalue()) == [
        {"dag_id": run.dag_id, "task_id": "submit", "submits": 2, "reattached": 0, "task_instances": 2}
    ]
    out = io.StringIO()
    usage_cli(["--dag-id", run.dag_id, "--days", "1"], out)
    lines = out.getvalue().splitlines()
    assert lines[0].split() == ["dag_id", "conn_id", "day", "submits", "reattached", "task_instances"]
    today = datetime.datetime.now(datetime.timezone.utc).date().isoformat()
    assert lines[2].split() == [run.dag_id, "midjourney_default", today, "2", "0", "2"]
    assert lines[-1].split() == ["total", "2", "0"]


@pytest.mark.parametrize("argv", [["--by", "colour"], ["--since", "yesterday"], ["--days", "0"]])
def test_the_cli_refuses_bad_arguments(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        usage_cli(argv)
    assert exit_info.value.code == 2
    assert "mjvideo-usage" in capsys.readouterr().err
