"""EveryQueue on a real PostgreSQL: the queues a `--queues '*'` worker claims from, as found."""

from __future__ import annotations

import asyncio
from typing import Any

import psycopg
from psycopg_pool import AsyncConnectionPool

from pgjobs.worker._queues import EveryQueue

Conn = psycopg.Connection[tuple[Any, ...]]


def test_it_lists_the_queues_with_queued_jobs_and_keeps_them_a_while(dsn: str, conn: Conn) -> None:
    (worker_id,) = conn.execute(
        "INSERT INTO pgjobs.workers (host, pid, queues, concurrency)"
        " VALUES ('h', 1, ARRAY['*'], 1) RETURNING id"
    ).fetchone()
    for queue in ("beta", "alpha", "alpha"):
        conn.execute("INSERT INTO pgjobs.jobs (task, queue) VALUES ('t', %s)", (queue,))
    conn.execute("INSERT INTO pgjobs.jobs (task, queue, status) VALUES ('t', 'old', 'failed')")
    conn.execute(
        "INSERT INTO pgjobs.jobs (task, queue, status, worker_id, attempts, started_at)"
        " VALUES ('t', 'busy', 'running', %s, 1, now())",
        (worker_id,),
    )

    def row() -> list[str]:
        return conn.execute(
            "SELECT queues FROM pgjobs.workers WHERE id = %s", (worker_id,)
        ).fetchone()[0]

    async def main() -> None:
        changes: list[list[str]] = []
        wake = asyncio.Event()
        async with AsyncConnectionPool(dsn, min_size=1, max_size=1, open=False) as pool:
            duty = EveryQueue(pool, worker_id, changes.append, wake, interval=1.0)
            await duty.run_once()
            # Queued jobs only: not a finished or a running job's queue.
            assert changes == [["alpha", "beta"]]
            assert wake.is_set()  # a queue was added: claim at once
            assert row() == ["*", "alpha", "beta"]
            wake.clear()
            conn.execute("DELETE FROM pgjobs.jobs_live WHERE queue = 'alpha'")
            conn.execute("INSERT INTO pgjobs.jobs (task, queue) VALUES ('t', 'gamma')")
            await duty.run_once()
            # alpha has no queued job left but stays listed (KEEP, 5 minutes).
            assert changes[-1] == ["alpha", "beta", "gamma"]
            assert row() == ["*", "alpha", "beta", "gamma"]
            wake.clear()
            duty.keep = 0.0
            await duty.run_once()
            assert changes[-1] == ["beta", "gamma"]
            assert not wake.is_set()  # nothing added: no wake-up
            assert row() == ["*", "beta", "gamma"]
            calls = len(changes)
            await duty.run_once()
            assert len(changes) == calls  # unchanged: not handed over again

    asyncio.run(main())
