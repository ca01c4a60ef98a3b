"""The leader's unserved-queues duty on a real PostgreSQL: due jobs that no live worker claims."""

from __future__ import annotations

import asyncio
from typing import Any

import psycopg
import structlog
from psycopg_pool import AsyncConnectionPool

from pgjobs.worker._config import WorkerConfig
from pgjobs.worker._db import Outage
from pgjobs.worker._leader import leader_for
from pgjobs.worker._unserved import UnservedQueues, unserved_queues

Conn = psycopg.Connection[tuple[Any, ...]]


def add_worker(conn: Conn, queues: list[str], last_seen: str) -> None:
    conn.execute(
        "INSERT INTO pgjobs.workers (host, pid, queues, concurrency, last_seen_at)"
        " VALUES ('h', 1, %s, 1, now() - %s::interval)",
        (queues, last_seen),
    )


def add_jobs(conn: Conn, queue: str, count: int, run_at: str, priority: int = 2) -> None:
    conn.execute(
        "INSERT INTO pgjobs.jobs (task, queue, priority, run_at)"
        " SELECT 't', %s, %s, now() + %s::interval FROM generate_series(1, %s)",
        (queue, priority, run_at, count),
    )


def setup(conn: Conn) -> None:
    add_worker(conn, ["served", "default"], "1 second")
    add_worker(conn, ["stale-only"], "10 minutes")  # its heartbeat is stale: serves nothing
    add_jobs(conn, "served", 5, "-1 hour")
    add_jobs(conn, "stale-only", 3, "-10 seconds")
    add_jobs(conn, "nobody", 2, "-1 minute", priority=4)
    add_jobs(conn, "nobody", 1, "-2 minutes", priority=0)
    add_jobs(conn, "nobody", 1, "+1 hour")  # not due: not counted
    add_jobs(conn, "later-only", 4, "+1 hour")  # nothing due: not reported
    conn.execute("INSERT INTO pgjobs.jobs (task, queue, status) VALUES ('t', 'finished', 'failed')")


def test_queues_with_due_jobs_and_no_live_worker_are_found(dsn: str, conn: Conn) -> None:
    setup(conn)

    async def main() -> list[dict[str, Any]]:
        async with AsyncConnectionPool(dsn, min_size=1, open=False) as pool:
            return await unserved_queues(pool, stale_after=30)

    found = asyncio.run(main())
    assert [(row["queue"], row["due"]) for row in found] == [("nobody", 3), ("stale-only", 3)]
    ages = {row["queue"]: float(row["oldest_due_seconds"]) for row in found}
    assert 120 <= ages["nobody"] < 180  # the oldest due job, whatever its priority
    assert 10 <= ages["stale-only"] < 70


def test_a_worker_of_every_queue_serves_them_all(dsn: str, conn: Conn) -> None:
    setup(conn)

    async def main() -> list[str]:
        async with AsyncConnectionPool(dsn, min_size=1, open=False) as pool:
            return [row["queue"] for row in await unserved_queues(pool, stale_after=30)]

    assert asyncio.run(main()) == ["nobody", "stale-only"]
    add_worker(conn, ["*", "served"], "10 minutes")  # stale: serves nothing
    assert asyncio.run(main()) == ["nobody", "stale-only"]
    add_worker(conn, ["*"], "1 second")  # `worker --queues '*'`
    assert asyncio.run(main()) == []


def test_the_count_is_capped(dsn: str, conn: Conn) -> None:
    add_jobs(conn, "nobody", 30, "-1 minute")

    async def main() -> list[dict[str, Any]]:
        async with AsyncConnectionPool(dsn, min_size=1, open=False) as pool:
            return await unserved_queues(pool, stale_after=30, cap=10)

    assert [(row["queue"], row["due"]) for row in asyncio.run(main())] == [("nobody", 10)]


def test_the_duty_logs_one_line_per_unserved_queue(dsn: str, conn: Conn) -> None:
    setup(conn)

    async def main() -> list[float | None]:
        async with AsyncConnectionPool(dsn, min_size=1, open=False) as pool:
            duty = UnservedQueues(pool, stale_after=30, start_delay=5)
            first = await duty.run_once()  # only waits: workers deployed together register
            second = await duty.run_once()
            return [first, second]

    with structlog.testing.capture_logs() as logs:
        pauses = asyncio.run(main())
    assert pauses == [5, None]
    lines = [e for e in logs if e["event"] == "leader.unserved_queue"]
    assert [(e["queue"], e["due"], e["due_capped"]) for e in lines] == [
        ("nobody", 3, False),
        ("stale-only", 3, False),
    ]
    assert all(e["log_level"] == "warning" for e in lines)


def test_the_leader_runs_it_once_a_minute(dsn: str) -> None:
    async def main() -> list[UnservedQueues]:
        pool: AsyncConnectionPool[Any] = AsyncConnectionPool(dsn, open=False)
        leader = leader_for(pool, WorkerConfig(), dsn, Outage())
        return [duty for duty in leader.duties if isinstance(duty, UnservedQueues)]

    (duty,) = asyncio.run(main())
    assert duty.interval == 60.0
