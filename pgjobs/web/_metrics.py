"""The dashboard's GET /metrics: the database's view of the queues, in Prometheus' text format.

Workers export what they see (`pgjobs/worker/_metrics.py`); this is what
only the database knows: the jobs waiting in each queue, how long the oldest
due one has waited, and the dead rows vacuum has still to clear. It is
written by hand (the format is a few lines of text), so the dashboard needs
no extra package for it.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from psycopg.rows import dict_row

from pgjobs import _sql
from pgjobs.web._db import AsyncConn

#: The version of the text format written here, as Prometheus asks it to be named.
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

#: Active jobs per queue, by state: available (due), scheduled (due later), running.
QUEUE_JOBS = "pgjobs_queue_jobs"
#: Seconds since the oldest due job of a queue became due; 0 when none is due.
OLDEST_DUE = "pgjobs_queue_oldest_due_seconds"
#: Live and dead rows of each pgjobs table, as the statistics collector counts them.
LIVE_TUPLES = "pgjobs_table_live_tuples"
DEAD_TUPLES = "pgjobs_table_dead_tuples"

_HELP = {
    QUEUE_JOBS: "Active jobs per queue and state: available (due now), scheduled (due later), "
    "running.",
    OLDEST_DUE: "Seconds since the oldest due job of the queue became due (0: none is due).",
    LIVE_TUPLES: "Live rows of a pgjobs table (pg_stat_user_tables.n_live_tup).",
    DEAD_TUPLES: "Dead rows of a pgjobs table, not yet vacuumed (pg_stat_user_tables.n_dead_tup).",
}

#: The metric names this endpoint writes.
NAMES = tuple(_HELP)


@dataclass(frozen=True, slots=True)
class QueueDepth:
    """One queue's active jobs (metrics_queues.sql)."""

    queue: str
    available: int
    scheduled: int
    running: int
    oldest_due_seconds: float


@dataclass(frozen=True, slots=True)
class TableRows:
    """One pgjobs table's row counts (metrics_tables.sql)."""

    name: str
    live_rows: int
    dead_rows: int


async def _rows(conn: AsyncConn, name: str, params: dict[str, Any]) -> list[dict[str, Any]]:
    # Never prepared, as every dashboard statement (see pgjobs/web/_queries.py).
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(_sql.psycopg(name, "pgjobs.web"), params, prepare=False)
        return await cur.fetchall()


async def read(conn: AsyncConn, *, stale_after: float) -> tuple[list[QueueDepth], list[TableRows]]:
    """The queues' depths and the tables' rows, in two statements.

    Args:
        conn: an autocommit connection of the dashboard.
        stale_after: seconds after which a silent worker no longer counts as
            serving its queues (an idle queue it serves is still listed).
    """
    queues = [
        QueueDepth(
            r["queue"],
            int(r["available"]),
            int(r["scheduled"]),
            int(r["running"]),
            float(r["oldest_due_seconds"]),
        )
        for r in await _rows(conn, "metrics_queues", {"stale_after": stale_after})
    ]
    tables = [
        TableRows(r["name"], int(r["live_rows"]), int(r["dead_rows"]))
        for r in await _rows(conn, "metrics_tables", {})
    ]
    return queues, tables


def _label(value: str) -> str:
    # The text format's escapes inside a label value: backslash, quote, newline.
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _family(name: str, samples: Iterable[tuple[str, float | int]]) -> Iterator[str]:
    yield f"# HELP {name} {_HELP[name]}"
    yield f"# TYPE {name} gauge"
    for labels, value in samples:
        yield f"{name}{{{labels}}} {value!r}"


def exposition(queues: Iterable[QueueDepth], tables: Iterable[TableRows]) -> str:
    """The metrics in the Prometheus text format (pure)."""
    queues, tables = list(queues), list(tables)
    depth = [
        (f'queue="{_label(q.queue)}",state="{state}"', count)
        for q in queues
        for state, count in (
            ("available", q.available),
            ("scheduled", q.scheduled),
            ("running", q.running),
        )
    ]
    oldest = [(f'queue="{_label(q.queue)}"', q.oldest_due_seconds) for q in queues]
    live = [(f'table="{_label(t.name)}"', t.live_rows) for t in tables]
    dead = [(f'table="{_label(t.name)}"', t.dead_rows) for t in tables]
    lines = [
        *_family(QUEUE_JOBS, depth),
        *_family(OLDEST_DUE, oldest),
        *_family(LIVE_TUPLES, live),
        *_family(DEAD_TUPLES, dead),
    ]
    return "\n".join(lines) + "\n"
