"""The completer on a real PostgreSQL: outcomes written in batches, fenced, flushed on stop."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from typing import Any

import psycopg
from psycopg_pool import AsyncConnectionPool

from pgjobs.worker import _outcome
from pgjobs.worker._completer import Completer
from pgjobs.worker._db import Outage
from pgjobs.worker._outcome import ClaimedJob, succeeded

Conn = psycopg.Connection[tuple[Any, ...]]


def claimed(conn: Conn, count: int) -> tuple[int, list[ClaimedJob]]:
    """A registered worker running `count` jobs (ids 1..count) on their first attempt."""
    row = conn.execute(
        "INSERT INTO pgjobs.workers (host, pid, queues, concurrency)"
        " VALUES ('h', 1, ARRAY['default'], 10) RETURNING id"
    ).fetchone()
    assert row is not None
    worker_id = int(row[0])
    conn.execute(
        "INSERT INTO pgjobs.jobs (task, status, worker_id, attempts, started_at)"
        " SELECT 'done', 'running', %s, 1, now() FROM generate_series(1, %s)",
        (worker_id, count),
    )
    due = dt.datetime.now(dt.UTC)
    jobs = [ClaimedJob(i, "default", "done", {}, 0, 1, 3, {}, due) for i in range(1, count + 1)]
    return worker_id, jobs


def statuses(conn: Conn) -> list[tuple[int, str]]:
    return conn.execute("SELECT id, status::text FROM pgjobs.jobs ORDER BY id").fetchall()


def test_a_pass_writes_at_most_one_batch(dsn: str, conn: Conn) -> None:
    worker_id, jobs = claimed(conn, 5)

    async def main() -> list[int]:
        async with AsyncConnectionPool(dsn, min_size=1, open=False) as pool:
            completer = Completer(pool, worker_id, Outage(), batch_size=3, interval=0.01)
            try:
                for job in jobs:
                    completer.add(succeeded(job, '"ok"'))
                left = []
                await completer.run_once()
                left.append(completer.pending)
                await completer.run_once()
                left.append(completer.pending)
                return left
            finally:
                await completer.close()

    assert asyncio.run(main()) == [2, 0]
    assert statuses(conn) == [(i, "succeeded") for i in range(1, 6)]
    assert conn.execute("SELECT DISTINCT result FROM pgjobs.jobs").fetchall() == [("ok",)]


def test_completion_is_fenced_against_a_rescued_job(dsn: str, conn: Conn) -> None:
    worker_id, jobs = claimed(conn, 2)
    # While job 1 ran, it was taken from this worker, as the rescuer would.
    conn.execute(
        "UPDATE pgjobs.jobs SET status = 'queued', worker_id = NULL, run_at = now() + '1h'"
        " WHERE id = 1"
    )

    async def main() -> int:
        async with AsyncConnectionPool(dsn, min_size=1, open=False) as pool:
            completer = Completer(pool, worker_id, Outage(), batch_size=10, interval=0.01)
            try:
                for job in jobs:
                    completer.add(succeeded(job, None))
                await completer.run_once()
                return completer.fenced
            finally:
                await completer.close()

    assert asyncio.run(main()) == 1
    assert conn.execute(
        "SELECT id, status::text, result FROM pgjobs.jobs ORDER BY id"
    ).fetchall() == [
        (1, "queued", None),
        (2, "succeeded", None),
    ]


def test_stop_flushes_what_is_pending_without_waiting_for_a_full_batch(
    dsn: str, conn: Conn
) -> None:
    worker_id, jobs = claimed(conn, 3)

    async def main() -> None:
        async with AsyncConnectionPool(dsn, min_size=1, open=False) as pool:
            # A batch waits an hour for outcomes that will not come.
            completer = Completer(pool, worker_id, Outage(), batch_size=100, interval=3600)
            task = asyncio.create_task(completer.run())
            for job in jobs:
                completer.add(succeeded(job, None))
            await asyncio.sleep(0)
            completer.stop()
            await asyncio.wait_for(task, 10)
            assert completer.pending == 0

    asyncio.run(main())
    assert statuses(conn) == [(1, "succeeded"), (2, "succeeded"), (3, "succeeded")]


def test_an_idle_worker_s_outcome_is_written_at_once_and_wakes_its_fetcher(
    dsn: str, conn: Conn
) -> None:
    worker_id, jobs = claimed(conn, 2)

    async def main() -> list[str]:
        events: list[str] = []
        idle = {"now": False}
        woken = asyncio.Event()

        def wake() -> None:
            events.append("woken")
            woken.set()

        async with AsyncConnectionPool(dsn, min_size=1, open=False) as pool:
            # A batch would wait an hour for outcomes, unless the worker is idle.
            completer = Completer(
                pool,
                worker_id,
                Outage(),
                batch_size=100,
                interval=3600,
                idle=lambda: idle["now"],
                after_idle_write=wake,
            )
            task = asyncio.create_task(completer.run())
            try:
                # Busy (another job runs): the first outcome waits for company.
                completer.add(succeeded(jobs[0], None))
                for _ in range(20):
                    await asyncio.sleep(0.01)
                events.append(f"pending {completer.pending}")
                # Idle: the next outcome takes the first one along at once.
                idle["now"] = True
                completer.add(succeeded(jobs[1], None))
                await asyncio.wait_for(woken.wait(), 10)
                events.append(f"pending {completer.pending}")
            finally:
                completer.stop()
                await asyncio.wait_for(task, 10)
        return events

    assert asyncio.run(main()) == ["pending 1", "woken", "pending 0"]
    assert statuses(conn) == [(1, "succeeded"), (2, "succeeded")]


def test_the_batch_arrays_reach_postgresql_as_the_values_they_hold(conn: Conn) -> None:
    """batch_params sends array literals it writes itself: the server reads back the same values."""
    texts = [
        None,
        '{"message": "quote \\" and backslash \\\\ in it"}',
        '{"message": "NULL"}',
        '"NULL"',
        '{"message": "braces {} and commas, , newline\\n, tab\\t, é ✓"}',
        '{"traceback": "C:\\\\path\\\\to \\"x\\""}',
        "[]",
    ]
    cast = "SELECT CAST(%s AS jsonb[])::text[], CAST(%s AS bigint[]), CAST(%s AS float8[])"
    ints = [1, 2**62, 0]
    floats = [0.0, 1e-05, 123456.789, 3.0]
    row = conn.execute(
        cast, [_outcome._texts(texts), _outcome._words(ints), _outcome._words(floats)]
    )
    read, read_ints, read_floats = row.fetchone()
    assert [None if t is None else json.loads(t) for t in read] == [
        None if t is None else json.loads(t) for t in texts
    ]
    assert read_ints == ints
    assert read_floats == floats
    assert conn.execute(
        "SELECT CAST(%s AS boolean[]), CAST(%s AS pgjobs.job_status[])::text[]",
        [_outcome._words(["t", "f"]), _outcome._words(["succeeded", "queued", "failed"])],
    ).fetchone() == ([True, False], ["succeeded", "queued", "failed"])
