"""The `python -m pgjobs cron` commands: see the schedules kept in pgjobs.schedules."""

from __future__ import annotations

import argparse
import datetime as dt
import json
from typing import Any

import psycopg
from psycopg.rows import dict_row

from pgjobs import _dsn, _sql
from pgjobs._table import table
from pgjobs.cli._terminal import add_dsn, add_json, connection, print_json
from pgjobs.errors import SchemaVersionError

_COLUMNS = ("name", "expression", "tz", "task", "next fire", "last fire", "active")


def add_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `cron list` to the CLI."""
    cron = sub.add_parser(
        "cron",
        help="cron schedules",
        description="The cron schedules workers keep in pgjobs.schedules.",
    )
    commands = cron.add_subparsers(dest="cron_command", required=True, metavar="COMMAND")
    p = commands.add_parser(
        "list",
        help="list schedules",
        description="Every schedule: expression, timezone, task, next and last fire, and "
        "whether it is still in the code (active).",
    )
    add_dsn(p)
    add_json(p, help="one JSON object per schedule, in a list")
    p.set_defaults(handler=_run_list)


def _run_list(args: argparse.Namespace) -> int:
    dsn = _dsn.require(args.dsn)
    schedules = list_schedules(dsn)
    if args.json:
        print_json([_jsonable(s) for s in schedules])
    elif not schedules:
        print("no schedules (workers write them to pgjobs.schedules when they start)")
    else:
        print(_schedule_table(schedules))
    return 0


def list_schedules(dsn: str) -> list[dict[str, Any]]:
    """Every row of pgjobs.schedules, active ones first.

    Raises:
        DatabaseUnavailableError: the server cannot be reached.
        SchemaVersionError: the schema has no schedules table (not migrated).
    """
    try:
        with connection(dsn) as conn, conn.cursor(row_factory=dict_row) as cur:
            cur.execute(_sql.psycopg("cron_list"), {})
            return list(cur.fetchall())
    except psycopg.errors.UndefinedTable:
        raise SchemaVersionError(
            "the database has no pgjobs.schedules table; run `python -m pgjobs migrate`"
        ) from None


def _jsonable(row: dict[str, Any]) -> dict[str, Any]:
    # The clock is the query's, not the schedule's; args are stored as JSON text.
    out = {key: value for key, value in row.items() if key != "now"}
    out["args"] = json.loads(row["args"])
    return out


def _when(value: dt.datetime | None, now: dt.datetime) -> str:
    if value is None:
        return "-"
    seconds = (value - now).total_seconds()
    if abs(seconds) < 1:
        relative = "now"
    elif seconds > 0:
        relative = f"in {_span(seconds)}"
    else:
        relative = f"{_span(-seconds)} ago"
    return f"{value.astimezone(dt.UTC):%Y-%m-%d %H:%M:%S}Z ({relative})"


def _span(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds / size:.0f}{unit}"
    return f"{seconds:.0f}s"


def _schedule_table(schedules: list[dict[str, Any]]) -> str:
    rows = [
        (
            s["name"],
            s["expression"],
            s["timezone"],
            s["task"],
            _when(s["next_fire_at"], s["now"]) if s["active"] else "-",
            _when(s["last_fired_at"], s["now"]),
            "yes" if s["active"] else "no (removed)",
        )
        for s in schedules
    ]
    return table(_COLUMNS, rows)
