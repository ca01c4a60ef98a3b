"""The pruner on a real PostgreSQL: old finished jobs go, in batches, and nothing else does."""

from __future__ import annotations

import asyncio
from typing import Any

import psycopg
from psycopg_pool import AsyncConnectionPool

from pgjobs.worker._pruner import Pruner

DAY = 86_400.0
RETENTION: dict[str, float | None] = {"succeeded": DAY, "cancelled": DAY, "failed": 7 * DAY}

Conn = psycopg.Connection[tuple[Any, ...]]


def insert(conn: Conn, status: str, count: int, age: str, finished: bool = True) -> None:
    """`count` jobs of `status`, created and (if `finished`) finished `age` ago."""
    conn.execute(
        "INSERT INTO pgjobs.jobs (task, status, created_at, finished_at, worker_id)"
        " SELECT 'noop', %s::pgjobs.job_status, now() - %s::interval,"
        "        CASE WHEN %s THEN now() - %s::interval END,"
        "        CASE WHEN %s = 'running' THEN 1 END"
        " FROM generate_series(1, %s)",
        (status, age, finished, age, status, count),
    )


def by_status(conn: Conn) -> dict[str, int]:
    rows = conn.execute("SELECT status::text, count(*) FROM pgjobs.jobs GROUP BY 1").fetchall()
    return {status: int(count) for status, count in rows}


def prune(dsn: str, runs: int = 1, **options: Any) -> list[dict[str, int]]:
    async def main() -> list[dict[str, int]]:
        pool: AsyncConnectionPool[Any] = AsyncConnectionPool(
            dsn, min_size=1, max_size=2, open=False
        )
        await pool.open(wait=True)
        try:
            pruner = Pruner(pool, options.pop("retention", RETENTION), 30.0, **options)
            return [await pruner.prune() for _ in range(runs)]
        finally:
            await pool.close()

    return asyncio.run(main())


def test_prunes_old_finished_jobs_and_nothing_else(dsn: str, conn: Conn) -> None:
    insert(conn, "succeeded", 3000, "2 days")
    insert(conn, "cancelled", 500, "2 days")
    insert(conn, "failed", 700, "2 days")  # failed: kept for 7 days
    insert(conn, "failed", 300, "8 days")
    insert(conn, "succeeded", 200, "1 hour")  # recent
    # Old queued and running jobs, even with a finished_at set by hand, stay.
    insert(conn, "queued", 100, "30 days")
    insert(conn, "running", 50, "30 days")
    conn.execute(
        "UPDATE pgjobs.jobs SET finished_at = now() - interval '30 days'"
        " WHERE status IN ('queued', 'running')"
    )

    (counts,) = prune(dsn, batch=400, pause=0.0)
    assert counts == {"succeeded": 3000, "cancelled": 500, "failed": 300, "workers": 0}
    assert by_status(conn) == {"succeeded": 200, "failed": 700, "queued": 100, "running": 50}


def test_batches_are_bounded_and_a_backlog_clears_over_runs(dsn: str, conn: Conn) -> None:
    insert(conn, "succeeded", 5000, "3 days")
    first, second, third = prune(dsn, batch=1000, max_batches=2, pause=0.0, runs=3)
    assert first["succeeded"] == 2000  # two statements of 1000 each, then the run ends
    assert second["succeeded"] == 2000
    assert third["succeeded"] == 1000
    assert by_status(conn) == {}


def test_the_table_stays_bounded_while_jobs_keep_finishing(dsn: str, conn: Conn) -> None:
    sizes = []
    for _ in range(5):
        insert(conn, "succeeded", 2000, "2 days")  # a day's worth of finished jobs, aged
        insert(conn, "succeeded", 100, "1 minute")
        prune(dsn, batch=500, pause=0.0)
        sizes.append(by_status(conn)["succeeded"])
    assert sizes == [100, 200, 300, 400, 500]  # only the recent ones accumulate


def test_retention_none_keeps_a_status_forever(dsn: str, conn: Conn) -> None:
    insert(conn, "failed", 10, "400 days")
    (counts,) = prune(dsn, retention={"succeeded": DAY, "failed": None})
    assert "failed" not in counts
    assert by_status(conn) == {"failed": 10}


def test_gone_workers_without_jobs_are_removed(dsn: str, conn: Conn) -> None:
    conn.execute(
        "INSERT INTO pgjobs.workers (id, host, pid, queues, concurrency, last_seen_at) VALUES"
        " (1, 'h', 1, '{default}', 1, now() - interval '1 hour'),"
        " (2, 'h', 2, '{default}', 1, now() - interval '1 hour'),"
        " (3, 'h', 3, '{default}', 1, now())"
    )
    conn.execute("INSERT INTO pgjobs.jobs (task, status, worker_id) VALUES ('noop', 'running', 2)")
    (counts,) = prune(dsn)
    assert counts["workers"] == 1
    # Worker 2 still holds a running job: that is the rescuer's to clean up.
    assert conn.execute("SELECT array_agg(id ORDER BY id) FROM pgjobs.workers").fetchone() == (
        [2, 3],
    )


def test_stop_cuts_a_pass_short_between_statements(dsn: str, conn: Conn) -> None:
    insert(conn, "succeeded", 3000, "3 days")

    async def main() -> dict[str, int]:
        async with AsyncConnectionPool(dsn, min_size=1, open=False) as pool:
            pruner = Pruner(pool, {"succeeded": DAY}, 30.0, batch=1000, pause=3600)
            pruner.stop()  # the leader stepped down while the pass ran
            return await asyncio.wait_for(pruner.prune(), 30)

    counts = asyncio.run(main())
    assert counts["succeeded"] == 1000  # one statement, no hour-long pause
    assert by_status(conn) == {"succeeded": 2000}
