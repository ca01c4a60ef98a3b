"""The pruner on a real PostgreSQL: history partitions made ahead, dropped past retention, whole."""

from __future__ import annotations

import asyncio
from typing import Any

import psycopg
import pytest
from psycopg_pool import AsyncConnectionPool

from pgjobs.worker._pruner import Pruner

DAY = 86_400.0
RETENTION: dict[str, float | None] = {"succeeded": DAY, "cancelled": DAY, "failed": 7 * DAY}

Conn = psycopg.Connection[tuple[Any, ...]]


def insert(conn: Conn, status: str, count: int, age: str, table: str = "pgjobs.jobs") -> None:
    """`count` jobs of `status`, created and (if finished) finished `age` ago.

    Through the view, each row goes where its status says (and a history
    partition for its finished_at is made if there is none).
    """
    conn.execute(
        f"INSERT INTO {table} (task, status, created_at, finished_at, worker_id)"
        " SELECT 'noop', %s::pgjobs.job_status, now() - %s::interval,"
        "        CASE WHEN %s IN ('succeeded', 'failed', 'cancelled')"
        "             THEN now() - %s::interval END,"
        "        CASE WHEN %s = 'running' THEN 1 END"
        " FROM generate_series(1, %s)",
        (status, age, status, age, status, count),
    )


def by_status(conn: Conn) -> dict[str, int]:
    rows = conn.execute("SELECT status::text, count(*) FROM pgjobs.jobs GROUP BY 1").fetchall()
    return {status: int(count) for status, count in rows}


def partitions(conn: Conn) -> list[tuple[str, str]]:
    return conn.execute(
        "SELECT status::text, partition::text FROM pgjobs.history_partitions ORDER BY 1, from_at"
    ).fetchall()


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


def test_whole_partitions_past_retention_go_and_nothing_else(dsn: str, conn: Conn) -> None:
    insert(conn, "succeeded", 3000, "2 days")
    insert(conn, "cancelled", 500, "2 days")
    insert(conn, "failed", 700, "2 days")  # failed: kept for 7 days
    insert(conn, "failed", 300, "8 days")
    insert(conn, "succeeded", 200, "1 hour")  # recent
    insert(conn, "queued", 100, "30 days")
    insert(conn, "running", 50, "30 days")
    before = partitions(conn)
    dead_before = conn.execute(
        "SELECT coalesce(sum(n_dead_tup), 0) FROM pg_stat_user_tables WHERE schemaname = 'pgjobs'"
        # The jobs' tables only: the chart's counts (migration 0019) and the
        # workers' rows change row by row, as they should.
        " AND (relname = 'jobs_live' OR relname LIKE 'job\\_history%')"
    ).fetchone()

    (counts,) = prune(dsn)

    assert counts["partitions_dropped"] == 3
    assert by_status(conn) == {"succeeded": 200, "failed": 700, "queued": 100, "running": 50}
    gone = set(before) - set(partitions(conn))
    assert sorted(status for status, _ in gone) == ["cancelled", "failed", "succeeded"]
    # Nothing was deleted row by row: no dead rows were left behind (but in the
    # chart's counts).
    dead_after = conn.execute(
        "SELECT coalesce(sum(n_dead_tup), 0) FROM pg_stat_user_tables WHERE schemaname = 'pgjobs'"
        # The jobs' tables only: the chart's counts (migration 0019) and the
        # workers' rows change row by row, as they should.
        " AND (relname = 'jobs_live' OR relname LIKE 'job\\_history%')"
    ).fetchone()
    assert dead_after == dead_before
    # A query over the dropped range is not an error: it finds nothing.
    assert conn.execute(
        "SELECT count(*) FROM pgjobs.jobs WHERE status = 'succeeded'"
        " AND finished_at < now() - interval '1 day'"
    ).fetchone() == (0,)


def test_partitions_are_made_ahead_for_every_finished_status(dsn: str, conn: Conn) -> None:
    conn.execute("TRUNCATE pgjobs.job_history")
    for (name,) in conn.execute("SELECT partition::text FROM pgjobs.history_partitions").fetchall():
        conn.execute(f"DROP TABLE {name}")
    (counts,) = prune(dsn, step=6 * 3600, ahead=DAY)
    covered = conn.execute(
        "SELECT status::text, min(from_at) <= now(), max(to_at) >= now() + interval '1 day',"
        " bool_and(to_at - from_at <= interval '6 hours')"
        " FROM pgjobs.history_partitions GROUP BY 1 ORDER BY 1"
    ).fetchall()
    assert covered == [(s, True, True, True) for s in ("cancelled", "failed", "succeeded")]
    assert counts["partitions_made"] == len(partitions(conn)) >= 12
    (again,) = prune(dsn, step=6 * 3600, ahead=DAY)
    assert again["partitions_made"] == 0


def test_retention_none_keeps_a_status_forever(dsn: str, conn: Conn) -> None:
    insert(conn, "failed", 10, "400 days")
    (counts,) = prune(dsn, retention={"succeeded": DAY, "failed": None})
    assert counts["partitions_dropped"] == 0
    assert by_status(conn) == {"failed": 10}


def test_finished_jobs_left_in_the_live_table_move_in_bounded_batches(dsn: str, conn: Conn) -> None:
    """What an upgrade from 0008 leaves behind, moved a batch per statement."""
    insert(conn, "succeeded", 5000, "3 hours", table="pgjobs.jobs_live")
    first, second, third = prune(dsn, batch=1000, max_batches=2, runs=3)
    assert [first["moved"], second["moved"], third["moved"]] == [2000, 2000, 1000]
    assert conn.execute("SELECT count(*) FROM pgjobs.jobs_live").fetchone() == (0,)
    assert conn.execute("SELECT count(*) FROM pgjobs.job_history").fetchone() == (5000,)


def test_stop_cuts_a_pass_short_between_statements(dsn: str, conn: Conn) -> None:
    insert(conn, "succeeded", 3000, "3 hours", table="pgjobs.jobs_live")

    async def main() -> dict[str, int]:
        async with AsyncConnectionPool(dsn, min_size=1, open=False) as pool:
            pruner = Pruner(pool, {"succeeded": DAY}, 30.0, batch=1000)
            pruner.stop()  # the leader stepped down while the pass ran
            return await asyncio.wait_for(pruner.prune(), 30)

    counts = asyncio.run(main())
    assert counts["moved"] == 1000  # one statement, then the pass ends
    assert by_status(conn) == {"succeeded": 3000}


def test_a_reader_of_the_partition_postpones_its_drop_without_blocking_writers(
    dsn: str, conn: Conn
) -> None:
    """The detach waits for transactions that can still see the partition; it gives
    up after its lock_timeout and is finished on a later pass."""
    insert(conn, "succeeded", 100, "3 days")
    with psycopg.connect(dsn) as reader:
        reader.execute("BEGIN ISOLATION LEVEL REPEATABLE READ")
        assert reader.execute("SELECT count(*) FROM pgjobs.jobs").fetchone() == (100,)
        (first,) = prune(dsn, lock_timeout=0.5)
        # Meanwhile, writes to the history go on.
        insert(conn, "succeeded", 5, "1 minute")
        assert reader.execute("SELECT count(*) FROM pgjobs.jobs").fetchone() == (100,)
    (second,) = prune(dsn, lock_timeout=0.5)
    assert (first["partitions_dropped"], second["partitions_dropped"]) == (0, 1)
    assert by_status(conn) == {"succeeded": 5}


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


@pytest.mark.parametrize("step", [7 * 3600, 600, 2 * DAY, 1000])
def test_a_partition_interval_that_does_not_divide_a_day_is_refused(
    conn: Conn, step: float
) -> None:
    with pytest.raises(psycopg.errors.InvalidParameterValue, match="must divide a day evenly"):
        conn.execute("SELECT pgjobs.create_history_partitions(make_interval(secs => %s))", [step])


def test_counts_of_finished_jobs_go_after_2_days_per_minute_and_31_per_hour(
    dsn: str, conn: Conn
) -> None:
    """The dashboard chart's counts (migration 0019)."""
    insert(conn, "succeeded", 30, "32 days")
    insert(conn, "succeeded", 20, "3 days")
    insert(conn, "failed", 5, "2 hours")

    def counted(table: str) -> list[tuple[str, int]]:
        return conn.execute(
            f"SELECT status::text, sum(jobs) FROM pgjobs.{table} GROUP BY 1 ORDER BY 1"
        ).fetchall()

    assert counted("finished_per_minute") == [("failed", 5), ("succeeded", 50)]
    assert counted("finished_per_hour") == [("failed", 5), ("succeeded", 50)]
    (counts,) = prune(dsn, retention={"succeeded": None, "failed": None})
    assert (counts["minute_counts"], counts["hour_counts"]) == (2, 1)
    assert counted("finished_per_minute") == [("failed", 5)]
    assert counted("finished_per_hour") == [("failed", 5), ("succeeded", 20)]
