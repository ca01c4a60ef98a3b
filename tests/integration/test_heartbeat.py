"""The heartbeat on a real PostgreSQL: a fresh row, registering again, orphaned claims."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import psycopg
from psycopg_pool import AsyncConnectionPool

from pgjobs.worker._db import Outage
from pgjobs.worker._heartbeat import Heartbeat

T = TypeVar("T")
Conn = psycopg.Connection[tuple[Any, ...]]


def with_pool(dsn: str, body: Callable[[AsyncConnectionPool[Any]], Awaitable[T]]) -> T:
    async def main() -> T:
        async with AsyncConnectionPool(dsn, min_size=1, open=False) as pool:
            return await body(pool)

    return asyncio.run(main())


def add_worker(conn: Conn, last_seen: str = "0 seconds") -> int:
    row = conn.execute(
        "INSERT INTO pgjobs.workers (host, pid, queues, concurrency, last_seen_at)"
        " VALUES ('h', 1, ARRAY['default'], 1, now() - %s::interval) RETURNING id",
        (last_seen,),
    ).fetchone()
    assert row is not None
    return int(row[0])


class Registrations:
    """Counts the heartbeat's calls to register again."""

    def __init__(self) -> None:
        self.calls = 0

    async def __call__(self) -> None:
        self.calls += 1


def test_a_beat_refreshes_the_workers_row(dsn: str, conn: Conn) -> None:
    worker_id = add_worker(conn, "20 seconds")
    reregister = Registrations()

    async def beat(pool: AsyncConnectionPool[Any]) -> None:
        await Heartbeat(pool, worker_id, 5.0, Outage(), reregister).run_once()

    with_pool(dsn, beat)
    fresh = conn.execute("SELECT last_seen_at > now() - interval '10 seconds' FROM pgjobs.workers")
    assert fresh.fetchall() == [(True,)]
    assert reregister.calls == 0


def test_a_worker_whose_row_is_gone_registers_again(dsn: str, conn: Conn) -> None:
    """The rescuer took it for dead; the beat finds no row and says so."""
    reregister = Registrations()

    async def beat(pool: AsyncConnectionPool[Any]) -> None:
        await Heartbeat(pool, 12345, 5.0, Outage(), reregister).run_once()

    with_pool(dsn, beat)
    assert reregister.calls == 1


def test_a_beat_gives_back_old_claims_this_worker_never_saw(dsn: str, conn: Conn) -> None:
    worker_id = add_worker(conn)
    conn.execute(
        "INSERT INTO pgjobs.jobs (id, task, status, worker_id, attempts, started_at)"
        " OVERRIDING SYSTEM VALUE VALUES"
        " (1, 'lost', 'running', %(w)s, 1, now() - interval '1 minute'),"  # orphaned
        " (2, 'known', 'running', %(w)s, 1, now() - interval '1 minute'),"  # running here
        " (3, 'young', 'running', %(w)s, 1, now())",  # its claim's reply may be on its way
        {"w": worker_id},
    )

    async def beat(pool: AsyncConnectionPool[Any]) -> None:
        heartbeat = Heartbeat(
            pool, worker_id, 5.0, Outage(), Registrations(), known=lambda: [2], orphan_age=30.0
        )
        await heartbeat.run_once()

    with_pool(dsn, beat)
    rows = conn.execute(
        "SELECT id, status::text, worker_id, attempts FROM pgjobs.jobs ORDER BY id"
    ).fetchall()
    assert rows == [
        (1, "queued", None, 0),  # the attempt never ran, so it does not count
        (2, "running", worker_id, 1),
        (3, "running", worker_id, 1),
    ]
