"""The worker's hot statements read pgjobs.jobs through an index, whatever plan PostgreSQL picks.

They are prepared, and PostgreSQL switches a prepared statement to a generic
plan (one that cannot see the parameters) after five runs when it looks no
dearer. A generic plan once joined the claimed or completed ids to a
sequential scan of the whole table, on every batch. These tests plan each
statement both ways, on a table big enough for a scan to look cheap but not
to be cheap, and look at the plan, not at a clock.
"""

from __future__ import annotations

import datetime as dt
import re

import psycopg
import pytest

from pgjobs import _sql

_START = dt.datetime(1, 1, 1, tzinfo=dt.UTC)

STATEMENTS = {
    "claim": {
        "queues": ["default"],
        "after_priorities": [-1],
        "after_run_ats": [_START],
        "after_ids": [0],
        "limit": 50,
        "worker_id": 1,
    },
    "claim_one_queue": {
        "queue": "default",
        "after_priority": -1,
        "after_run_at": _START,
        "after_id": 0,
        "limit": 50,
        "worker_id": 1,
    },
    "complete": {
        "ids": list(range(1, 51)),
        "attempts": [1] * 50,
        "statuses": ["succeeded"] * 50,
        "delays": [0.0] * 50,
        "errors": [None] * 50,
        "results": [None] * 50,
        "worker_id": 1,
    },
}


def _prepare(conn: psycopg.Connection, name: str) -> list[str]:
    """PREPARE the named query with $n placeholders; returns its parameter names in order."""
    order: list[str] = []

    def number(match: re.Match[str]) -> str:
        if match.group(1) not in order:
            order.append(match.group(1))
        return f"${order.index(match.group(1)) + 1}"

    text = re.sub(r"(?<![:\w]):([A-Za-z_][A-Za-z0-9_]*)", number, _sql.text(name))
    conn.execute(f"PREPARE {name} AS {text}".encode())
    return order


@pytest.mark.parametrize("mode", ["force_generic_plan", "force_custom_plan"])
@pytest.mark.parametrize("name", sorted(STATEMENTS))
def test_hot_statements_never_scan_the_jobs_table(dsn, name, mode):
    with psycopg.connect(dsn) as conn, psycopg.ClientCursor(conn) as cur:
        conn.execute(
            "INSERT INTO pgjobs.workers (id, host, pid, queues, concurrency)"
            " OVERRIDING SYSTEM VALUE VALUES (1, 'h', 1, ARRAY['default'], 50)"
        )
        conn.execute(
            "INSERT INTO pgjobs.jobs (task, args, status, worker_id, attempts)"
            " SELECT 't', '{}', 'running', 1, 1 FROM generate_series(1, 3000)"
        )
        conn.execute(
            "INSERT INTO pgjobs.jobs (task, args) SELECT 't', '{}' FROM generate_series(1, 100)"
        )
        conn.execute("ANALYZE pgjobs.jobs")
        conn.execute(f"SET plan_cache_mode = {mode}")
        order = _prepare(conn, name)
        values = [STATEMENTS[name][param] for param in order]
        placeholders = ", ".join(["%s"] * len(values))
        cur.execute(f"EXPLAIN (ANALYZE, COSTS OFF) EXECUTE {name} ({placeholders})", values)
        plan = "\n".join(row[0] for row in cur.fetchall())
        conn.rollback()
    assert "Seq Scan on jobs" not in plan, plan
    assert "Index Scan using jobs_pkey on jobs j" in plan, plan
