"""
Usage accounting: what each accepted submission cost, recorded where Airflow keeps it, summed per DAG,
connection and day.

Every submit operator records one :class:`UsageRecord` per try that got an id (:func:`record_submit`):
``count`` 1 for an accepted submission, 0 for a try that reattached to an earlier try's task or took
one that had already finished (nothing new was paid for). The task instance's records go to its XCom
``mj_usage`` as a list (its *ledger*) and into the ``usage`` of its asset event's extra.

Retries: XComs are cleared when a new try starts, so on Airflow 3.3+ the ledger is also kept in the task
instance's ``task_state_store`` and each try pushes every record of every try: a try that paid and then
failed still counts. Below 3.3 there is no such store: the XCom holds the last try's record only, and a
paid try that was followed by a retry is not counted (every try submits there anyway; see the README).

:class:`MidjourneyUsage` reads the ledgers back from the metadata database (where the ``airflow`` CLI
runs) and sums them; ``mjvideo-usage`` (:mod:`~airflow_provider_mjvideo.usage_cli`) prints the table.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import date, datetime, timezone
from typing import TYPE_CHECKING, Any, Final, cast

from airflow_provider_mjvideo.assets import attach_extra

if TYPE_CHECKING:
    from airflow.providers.common.compat.sdk import Context

    from airflow_provider_mjvideo.hooks.midjourney import MidjourneyHook

#: The XCom key of a task instance's usage ledger (a list of :meth:`UsageRecord.to_dict`).
USAGE_XCOM_KEY: Final = "mj_usage"
#: The ``task_state_store`` key of the same ledger (Airflow 3.3+), kept across tries.
USAGE_STORE_KEY: Final = "mj_usage"
#: What :meth:`MidjourneyUsage.summarize` can group by.
GROUP_KEYS: Final = ("dag_id", "conn_id", "day", "action", "route", "mode", "run_id", "task_id")
DEFAULT_GROUPS: Final = ("dag_id", "conn_id", "day")


@dataclass(frozen=True)
class UsageRecord:
    """
    One try's submission, as the usage ledger records it.

    :param route: the API path submitted to, without the speed-mode prefix (``/mj/submit/video``).
    :param action: what was submitted (``video``, ``extend``, ``imagine``, ``upscale``…).
    :param mj_task_id: the task the try ended up with.
    :param conn_id: the Midjourney connection.
    :param mode: the connection's forced speed mode (``fast``/``relax``/``turbo``), ``None`` for the server's.
    :param batch_size: the ``batchSize`` asked for, ``None`` for the server's default.
    :param reattach: the try reattached to, or took the result of, an earlier try's task: nothing was paid.
    :param submitted_at: when the task was submitted, ISO 8601 UTC.
    :param try_number: the Airflow try that recorded it.
    """

    route: str
    action: str
    mj_task_id: str
    conn_id: str
    mode: str | None
    batch_size: int | None
    reattach: bool
    submitted_at: str
    try_number: int | None = None

    @property
    def count(self) -> int:
        """Paid submissions: 1, or 0 for a reattach."""
        return 0 if self.reattach else 1

    @property
    def day(self) -> str:
        """The UTC day of the submission, ``YYYY-MM-DD``."""
        return self.submitted_at[:10]

    def to_dict(self) -> dict[str, Any]:
        """The JSON form (XCom, extra): the fields and ``count``."""
        return {"count": self.count, **asdict(self)}

    @classmethod
    def from_dict(cls, value: Mapping[str, Any]) -> UsageRecord:
        """
        Rebuild a record from its JSON form.

        :raises ValueError: not a usage record.
        """
        try:
            batch = value.get("batch_size")
            try_number = value.get("try_number")
            return cls(
                route=str(value["route"]),
                action=str(value["action"]),
                mj_task_id=str(value["mj_task_id"]),
                conn_id=str(value["conn_id"]),
                mode=None if value.get("mode") is None else str(value["mode"]),
                batch_size=None if batch is None else int(batch),
                reattach=bool(value["reattach"]),
                submitted_at=str(value["submitted_at"]),
                try_number=None if try_number is None else int(try_number),
            )
        except (KeyError, TypeError, ValueError) as err:
            raise ValueError(f"not a usage record: {err}") from None


def batch_size_of(extra_body: Mapping[str, Any] | None) -> int | None:
    """
    The ``batchSize`` of a submission's ``extra_body``, ``None`` when the server's default applies.

    :param extra_body: the rendered ``extra_body`` (already validated).
    """
    value = (extra_body or {}).get("batchSize")
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def iso_utc(epoch: float | None) -> str:
    """Epoch seconds (``None``: now) as ISO 8601 UTC to the second."""
    moment = datetime.now(timezone.utc) if epoch is None else datetime.fromtimestamp(epoch, timezone.utc)
    return moment.replace(microsecond=0).isoformat()


def current_ledger(context: Context) -> list[dict[str, Any]]:
    """
    The running task instance's usage ledger as its XCom holds it (``[]`` when nothing was recorded).

    :param context: the task's context.
    """
    value = context["ti"].xcom_pull(key=USAGE_XCOM_KEY)
    return [dict(record) for record in value if isinstance(record, Mapping)] if isinstance(value, list) else []


def record_submit(
    context: Context,
    hook: MidjourneyHook,
    route: str,
    mj_task_id: str,
    *,
    action: str,
    extra_body: Mapping[str, Any] | None = None,
    submitted_at: float | None = None,
    reattach: bool = False,
) -> list[dict[str, Any]]:
    """
    Record one try's submission (or reattach): append it to the ledger, push the ledger to XCom
    ``mj_usage`` and put it in the asset event's extra (with the task id and action).

    Call it once per try, right after the server accepted the submission, or after deciding to reattach to
    (or take the result of) an earlier try's task with ``reattach=True``.

    :param context: the task's context.
    :param hook: the hook that submitted (its connection id and speed mode are recorded).
    :param route: the API path, without the speed-mode prefix.
    :param mj_task_id: the accepted (or reattached) task id.
    :param action: what was submitted (``video``, ``extend``, ``imagine``…).
    :param extra_body: the submission's ``extra_body`` (its ``batchSize`` is recorded).
    :param submitted_at: epoch seconds of the submission (``None``: now).
    :param reattach: nothing new was paid for.
    :returns: the ledger, every try's records.
    """
    ti = context["ti"]
    record = UsageRecord(
        route=route,
        action=action,
        mj_task_id=str(mj_task_id),
        conn_id=hook.midjourney_conn_id,
        mode=hook.settings.mode,
        batch_size=batch_size_of(extra_body),
        reattach=reattach,
        submitted_at=iso_utc(submitted_at),
        try_number=getattr(ti, "try_number", None),
    )
    store = context.get("task_state_store")
    # Without a store (Airflow < 3.3) the ledger is this try's: a try submits at most once.
    earlier = store.get(USAGE_STORE_KEY) if store is not None else None
    ledger: list[dict[str, Any]] = (
        [dict(item) for item in earlier if isinstance(item, Mapping)] if isinstance(earlier, list) else []
    )
    ledger.append(record.to_dict())
    if store is not None:
        store.set(USAGE_STORE_KEY, cast("Any", ledger))  # plain JSON: the store's JsonValue, which mypy cannot see
    ti.xcom_push(key=USAGE_XCOM_KEY, value=ledger)
    attach_extra(context, {"mj_task_id": record.mj_task_id, "action": action, "usage": ledger})
    return ledger


# -- reading and summing --------------------------------------------------------------------------------


@dataclass(frozen=True)
class UsageEntry:
    """One record with the task instance whose ledger holds it."""

    dag_id: str
    run_id: str
    task_id: str
    map_index: int
    record: UsageRecord

    def group(self, key: str) -> Any:
        """The value of one of :data:`GROUP_KEYS`."""
        if key in ("dag_id", "run_id", "task_id"):
            return getattr(self, key)
        if key == "day":
            return self.record.day
        return getattr(self.record, key)


def _decode(value: Any) -> Any:
    # The XCom column holds the JSON the Task SDK serialised; some databases hand it back as text.
    if isinstance(value, (str, bytes)):
        try:
            return json.loads(value)
        except ValueError:
            return None
    return value


def entries_from_rows(rows: Iterable[tuple[str, str, str, int, Any]]) -> list[UsageEntry]:
    """
    Usage entries from ``(dag_id, run_id, task_id, map_index, value)`` rows of ``mj_usage`` XComs
    (values that are not ledgers are skipped).

    :param rows: the rows, as the metadata database or the REST API gives them.
    """
    entries = []
    for dag_id, run_id, task_id, map_index, value in rows:
        ledger = _decode(value)
        for item in ledger if isinstance(ledger, list) else []:
            try:
                record = UsageRecord.from_dict(item) if isinstance(item, Mapping) else None
            except ValueError:
                record = None
            if record is not None:
                entries.append(UsageEntry(str(dag_id), str(run_id), str(task_id), int(map_index), record))
    return entries


def _day(value: date | str | None) -> str | None:
    return None if value is None else value.isoformat()[:10] if isinstance(value, date) else str(value)[:10]


class MidjourneyUsage:
    """
    Usage records of many task instances, and their sums.

    Read them with :meth:`from_db` where the metadata database is configured (the scheduler's or the
    API server's machine, ``airflow`` CLI environments), or build one from ``mj_usage`` XCom rows fetched
    through the REST API with :func:`entries_from_rows`.

    :param entries: the records.
    """

    def __init__(self, entries: Iterable[UsageEntry]) -> None:
        self.entries = list(entries)

    @classmethod
    def from_db(
        cls,
        *,
        dag_id: str | None = None,
        run_id: str | None = None,
        since: date | str | None = None,
        until: date | str | None = None,
        session: Any = None,
    ) -> MidjourneyUsage:
        """
        Read every ``mj_usage`` XCom of the metadata database.

        :param dag_id: only this DAG's.
        :param run_id: only this DAG run's.
        :param since: only submissions on or after this UTC day (``YYYY-MM-DD``).
        :param until: only submissions on or before this UTC day.
        :param session: an SQLAlchemy session (default: a new one).
        """
        from airflow.models.xcom import XComModel
        from airflow.utils.session import create_session

        def read(session: Any) -> list[tuple[str, str, str, int, Any]]:
            query = session.query(
                XComModel.dag_id, XComModel.run_id, XComModel.task_id, XComModel.map_index, XComModel.value
            ).filter(XComModel.key == USAGE_XCOM_KEY)
            if dag_id:
                query = query.filter(XComModel.dag_id == dag_id)
            if run_id:
                query = query.filter(XComModel.run_id == run_id)
            first = _day(since)
            if first:
                # An XCom is written after its submission: none of the wanted ones is older than `since`.
                query = query.filter(XComModel.timestamp >= datetime.fromisoformat(first).replace(tzinfo=timezone.utc))
            return [tuple(row) for row in query.all()]

        if session is None:
            with create_session() as own:
                rows = read(own)
        else:
            rows = read(session)
        return cls(entries_from_rows(rows)).between(since, until)

    def between(self, since: date | str | None = None, until: date | str | None = None) -> MidjourneyUsage:
        """
        The records submitted from ``since`` to ``until`` (UTC days, both included; ``None``: open).
        """
        first, last = _day(since), _day(until)
        return MidjourneyUsage(
            entry
            for entry in self.entries
            if (first is None or entry.record.day >= first) and (last is None or entry.record.day <= last)
        )

    @property
    def total(self) -> int:
        """Paid submissions."""
        return sum(entry.record.count for entry in self.entries)

    def summarize(self, by: Sequence[str] = DEFAULT_GROUPS) -> list[dict[str, Any]]:
        """
        Sums per group, sorted: one dict per group with the ``by`` values, ``submits`` (paid submissions),
        ``reattached`` (tries that paid nothing) and ``task_instances``.

        :param by: keys of :data:`GROUP_KEYS`.
        :raises ValueError: an unknown key.
        """
        unknown = [key for key in by if key not in GROUP_KEYS]
        if not by or unknown:
            raise ValueError(f"cannot group usage by {', '.join(unknown)}; use {', '.join(GROUP_KEYS)}")
        sums: dict[tuple[Any, ...], dict[str, Any]] = {}
        instances: dict[tuple[Any, ...], set[tuple[str, str, str, int]]] = defaultdict(set)
        for entry in self.entries:
            group = tuple(entry.group(key) for key in by)
            row = sums.setdefault(group, {**dict(zip(by, group, strict=True)), "submits": 0, "reattached": 0})
            row["submits"] += entry.record.count
            row["reattached"] += 1 - entry.record.count
            instances[group].add((entry.dag_id, entry.run_id, entry.task_id, entry.map_index))
        for group, row in sums.items():
            row["task_instances"] = len(instances[group])
        return [sums[group] for group in sorted(sums, key=lambda group: tuple(str(part) for part in group))]

    def table(self, by: Sequence[str] = DEFAULT_GROUPS) -> str:
        """:meth:`summarize` as a plain-text table, with a total line."""
        rows = self.summarize(by)
        columns = [*by, "submits", "reattached", "task_instances"]
        cells = [[("" if row[column] is None else str(row[column])) for column in columns] for row in rows]
        cells.append(["total", *[""] * (len(by) - 1), str(self.total), str(sum(r["reattached"] for r in rows)), ""])
        widths = [max(len(column), *(len(line[i]) for line in cells)) for i, column in enumerate(columns)]

        def line(values: Sequence[str]) -> str:
            return "  ".join(value.ljust(width) for value, width in zip(values, widths, strict=True)).rstrip()

        return "\n".join([line(columns), line(["-" * width for width in widths]), *(line(c) for c in cells)])
