"""
``mjvideo-usage``: how many Midjourney submissions the DAGs paid for, per DAG, connection and day.

Run it where the ``airflow`` CLI works (it reads the metadata database Airflow is configured with)::

    $ mjvideo-usage --days 7
    dag_id         conn_id             day         submits  reattached  task_instances
    -------------  ------------------  ----------  -------  ----------  --------------
    mjvideo_chain  midjourney_default  2026-12-01  3        0           3
    total                                          3        0

``--by dag_id,action`` groups differently; ``--json`` prints the rows as JSON.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from datetime import date, datetime, timedelta, timezone
from typing import TextIO

from airflow_provider_mjvideo.usage import DEFAULT_GROUPS, GROUP_KEYS, MidjourneyUsage


def _day(value: str) -> date:
    """argparse type: a ``YYYY-MM-DD`` day."""
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a YYYY-MM-DD day: {value!r}") from None


def _groups(value: str) -> tuple[str, ...]:
    """argparse type: comma-separated keys of GROUP_KEYS."""
    keys = tuple(part.strip() for part in value.split(",") if part.strip())
    unknown = [key for key in keys if key not in GROUP_KEYS]
    if not keys or unknown:
        raise argparse.ArgumentTypeError(f"group by one or more of {', '.join(GROUP_KEYS)}, got {value!r}")
    return keys


def parser() -> argparse.ArgumentParser:
    """The command line of ``mjvideo-usage``."""
    cli = argparse.ArgumentParser(
        prog="mjvideo-usage",
        description="Sum the Midjourney submissions recorded in Airflow's metadata database (XCom mj_usage). "
        "A reattach to an earlier try's task counts 0.",
    )
    cli.add_argument("--dag-id", help="only this DAG")
    cli.add_argument("--run-id", help="only this DAG run")
    cli.add_argument("--since", type=_day, help="from this UTC day (YYYY-MM-DD)")
    cli.add_argument("--until", type=_day, help="to this UTC day, included")
    cli.add_argument("--days", type=int, help="the last N UTC days, today included (instead of --since)")
    cli.add_argument(
        "--by", type=_groups, default=DEFAULT_GROUPS, help=f"group by (default {','.join(DEFAULT_GROUPS)})"
    )
    cli.add_argument("--json", action="store_true", help="print the rows as JSON")
    return cli


def main(argv: Sequence[str] | None = None, out: TextIO | None = None) -> int:
    """
    Print the usage table; return the exit code.

    :param argv: the arguments (default: the command line's).
    :param out: where to print (default: standard output).
    """
    out = out or sys.stdout
    args = parser().parse_args(argv)
    since = args.since
    if args.days is not None:
        if args.days < 1:
            parser().error("--days must be at least 1")
        since = datetime.now(timezone.utc).date() - timedelta(days=args.days - 1)
    usage = MidjourneyUsage.from_db(dag_id=args.dag_id, run_id=args.run_id, since=since, until=args.until)
    if args.json:
        print(json.dumps(usage.summarize(args.by), indent=2), file=out)
    else:
        print(usage.table(args.by), file=out)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
