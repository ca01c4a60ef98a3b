"""The liveness lock on a real PostgreSQL: the listener holds it; a reconnect never costs jobs."""

from __future__ import annotations

import asyncio
import os
from typing import Any

import psycopg
import pytest

import pgjobs
from pgjobs._names import APP_NAME_LISTENER, LIVENESS_LOCK_CLASSID, with_pid
from pgjobs.worker._db import Outage
from pgjobs.worker._listener import Listener
from pgjobs.worker._rescuer import RECONNECT_SETTLE
from tests.integration.test_rescuer import add_running_jobs, add_worker, hold_liveness_lock

Conn = psycopg.Connection[tuple[Any, ...]]

#: Who holds which worker's liveness lock in this database.
HOLDERS = f"""
    SELECT l.objid::bigint, l.pid FROM pg_locks AS l
    JOIN pg_database AS d ON d.oid = l.database AND d.datname = current_database()
    WHERE l.locktype = 'advisory' AND l.objsubid = 2 AND l.granted
      AND l.classid = {LIVENESS_LOCK_CLASSID}
    ORDER BY 1
"""


def our_listener(conn: Conn) -> int:
    name = with_pid(APP_NAME_LISTENER, os.getpid())
    ((pid,),) = conn.execute(
        "SELECT pid FROM pg_stat_activity WHERE application_name = %s", (name,)
    ).fetchall()
    return int(pid)


def test_the_listener_takes_the_lock_before_it_is_connected_and_again_after_a_cut(
    dsn: str, conn: Conn
) -> None:
    worker = add_worker(conn, "0 seconds")

    async def main() -> None:
        listener = Listener(
            dsn, ("default",), asyncio.Event(), Outage(), health_interval=0.05, worker_id=worker
        )
        task = asyncio.create_task(listener.run())
        try:
            await asyncio.wait_for(listener.connected.wait(), 10)
            first = our_listener(conn)
            # Held by the listener's own backend from the moment it is connected.
            assert conn.execute(HOLDERS).fetchall() == [(worker, first)]
            assert listener.holds_lock
            conn.execute("SELECT pg_terminate_backend(%s)", (first,))
            for _ in range(200):
                await asyncio.sleep(0.02)
                held = conn.execute(HOLDERS).fetchall()
                if held and held[0][1] != first:
                    break
            second = our_listener(conn)
            assert second != first
            assert conn.execute(HOLDERS).fetchall() == [(worker, second)]
            # The worker registered again (its row was removed): the next
            # health check puts the mark back.
            conn.execute("UPDATE pgjobs.workers SET meta = '{}'")
            for _ in range(200):
                await asyncio.sleep(0.02)
                marks = conn.execute("SELECT meta ? 'liveness_lock' FROM pgjobs.workers")
                if marks.fetchall() == [(True,)]:
                    break
            marks = conn.execute("SELECT meta ? 'liveness_lock' FROM pgjobs.workers")
            assert marks.fetchall() == [(True,)]
            assert conn.execute(HOLDERS).fetchall() == [(worker, second)]  # held once, not stacked
            count = conn.execute(
                "SELECT count(*) FROM pg_locks WHERE pid = %s AND classid = %s",
                (second, LIVENESS_LOCK_CLASSID),
            ).fetchone()
            assert count == (1,)
        finally:
            listener.stop()
            await asyncio.gather(task, return_exceptions=True)
        assert conn.execute(HOLDERS).fetchall() == []

    asyncio.run(main())


def test_a_listener_without_a_worker_id_holds_no_lock(dsn: str, conn: Conn) -> None:
    async def main() -> None:
        listener = Listener(dsn, ("default",), asyncio.Event(), Outage())
        try:
            await listener.run_once()
            assert listener.connected.is_set()
            assert conn.execute(HOLDERS).fetchall() == []
        finally:
            await listener.close()

    asyncio.run(main())


@pytest.mark.slow
def test_a_live_worker_whose_listener_reconnects_keeps_its_jobs(dsn: str, conn: Conn) -> None:
    """pg_terminate_backend on the listener, again and again: no job is rescued from the worker.

    A dead worker (its lock released) next to it is rescued meanwhile, so the
    rule is at work, not held back by the settling after connections start.
    """
    app = pgjobs.App(dsn)

    @app.task(name="long")
    async def long(n: int) -> None:
        await asyncio.sleep(60)

    async def main() -> None:
        app.enqueue_many([long.job(n) for n in range(4)])
        worker = pgjobs.Worker(
            app, concurrency=4, rescue_interval=0.1, liveness_grace=0.5, leader_interval=0.2
        )
        task = asyncio.create_task(worker.run())
        try:
            for _ in range(200):
                await asyncio.sleep(0.05)
                running = conn.execute(
                    "SELECT count(*) FROM pgjobs.jobs WHERE status = 'running'"
                ).fetchone()
                if running == (4,):
                    break
            assert worker.worker_id is not None
            # Past the settling time, missing locks count.
            await asyncio.sleep(RECONNECT_SETTLE + 0.5)
            for _ in range(4):
                conn.execute("SELECT pg_terminate_backend(%s)", (our_listener(conn),))
                await asyncio.sleep(1.0)  # two graces: the rescuer looked, repeatedly
            # A dead worker's jobs go meanwhile: the rule was live all along.
            dead = add_worker(conn, "0 seconds")
            add_running_jobs(conn, dead, [1])
            hold_liveness_lock(dsn, dead).close()
            for _ in range(100):
                await asyncio.sleep(0.05)
                left = conn.execute(
                    "SELECT count(*) FROM pgjobs.jobs WHERE worker_id = %s", (dead,)
                ).fetchone()
                if left == (0,):
                    break
            assert left == (0,)
            held = conn.execute(
                "SELECT worker_id, status::text, errors FROM pgjobs.jobs"
                " WHERE task = 'long' ORDER BY id"
            ).fetchall()
            assert held == [(worker.worker_id, "running", [])] * 4
            assert len(worker.running) == 4
        finally:
            worker.request_stop(force=True)
            await task
            await app.aclose()

    asyncio.run(main())
