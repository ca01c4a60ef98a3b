"""The rescuer on a real PostgreSQL: a dead worker's jobs go back to the queue, or fail."""

from __future__ import annotations

import asyncio
from typing import Any

import psycopg
from psycopg_pool import AsyncConnectionPool

from pgjobs.worker._rescuer import Rescuer, rescue_once

Conn = psycopg.Connection[tuple[Any, ...]]


def rows(conn: Conn, sql: str) -> list[tuple[Any, ...]]:
    return conn.execute(sql).fetchall()


def add_worker(conn: Conn, last_seen: str) -> int:
    row = conn.execute(
        "INSERT INTO pgjobs.workers (host, pid, queues, concurrency, last_seen_at)"
        " VALUES ('h', 1, ARRAY['default'], 1, now() - %s::interval) RETURNING id",
        (last_seen,),
    ).fetchone()
    assert row is not None
    return int(row[0])


def add_running_jobs(conn: Conn, worker_id: int, attempts: list[int]) -> None:
    """One running job per entry of `attempts`, on that attempt of 2, held by `worker_id`."""
    conn.execute(
        "INSERT INTO pgjobs.jobs (task, status, worker_id, attempts, max_attempts, started_at)"
        " SELECT 'orphan', 'running', %s, a, 2, now() FROM unnest(%s::int[]) AS a",
        (worker_id, attempts),
    )


def test_rescue_returns_a_dead_workers_jobs(dsn: str, conn: Conn) -> None:
    dead = add_worker(conn, "1 hour")
    add_running_jobs(conn, dead, [1, 2])  # job 1 on its 1st attempt, job 2 on its 2nd and last

    async def rescue() -> dict[str, int]:
        async with AsyncConnectionPool(dsn, min_size=1, open=False) as pool:
            return await rescue_once(pool, stale_after=30)

    assert asyncio.run(rescue()) == {"dead_workers": 1, "requeued": 1, "failed": 1}
    result = rows(
        conn, "SELECT id, status, attempts, errors->-1->>'type' FROM pgjobs.jobs ORDER BY id"
    )
    assert result == [(1, "queued", 1, "pgjobs.WorkerLost"), (2, "failed", 2, "pgjobs.WorkerLost")]
    assert rows(conn, "SELECT count(*) FROM pgjobs.workers") == [(0,)]


def test_a_pass_rescues_only_workers_silent_for_longer_than_stale_after(
    dsn: str, conn: Conn
) -> None:
    dead = add_worker(conn, "1 minute")
    alive = add_worker(conn, "5 seconds")
    add_running_jobs(conn, dead, [1])
    add_running_jobs(conn, alive, [1])

    async def one_pass() -> None:
        async with AsyncConnectionPool(dsn, min_size=1, open=False) as pool:
            await Rescuer(pool, stale_after=30).run_once()

    asyncio.run(one_pass())
    assert rows(conn, "SELECT id FROM pgjobs.workers") == [(alive,)]
    assert rows(conn, "SELECT worker_id, status::text FROM pgjobs.jobs ORDER BY id") == [
        (None, "queued"),
        (alive, "running"),
    ]
