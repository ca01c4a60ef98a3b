"""The worker on a real PostgreSQL, in-process: order, delays, retries, failures, stopping."""

from __future__ import annotations

import asyncio
import sys
import time

import psycopg
import pytest

import pgjobs
from pgjobs.testing import drain, drain_async
from pgjobs.worker._completer import Completer
from pgjobs.worker._db import fetch
from pgjobs.worker._fetcher import Fetcher
from pgjobs.worker._heartbeat import Heartbeat
from pgjobs.worker._leader import Leader
from pgjobs.worker._listener import Listener
from pgjobs.worker._worker import EXIT_LOOP_FAILED


@pytest.fixture
def app(dsn):
    application = pgjobs.App(dsn)
    yield application
    application.close()


def rows(conn, sql, *params):
    return conn.execute(sql, params).fetchall()


def test_priority_order_holds(app, conn):
    ran: list[tuple[int, int]] = []

    @app.task(name="ordered")
    def ordered(priority: int, n: int) -> None:
        ran.append((priority, n))

    specs = [ordered.options(priority=p).job(p, n) for n in range(3) for p in (4, 3, 2, 1, 0)]
    app.enqueue_many(specs)
    drain(app, concurrency=1)
    assert ran == sorted(ran)
    assert len(ran) == 15


def test_a_delayed_job_does_not_run_early(app, conn):
    @app.task(name="later")
    def later() -> None:
        pass

    later.options(delay=1.5).enqueue()
    drain(app)  # nothing is due yet
    assert rows(conn, "SELECT status, attempts FROM pgjobs.jobs") == [("queued", 0)]
    time.sleep(1.6)
    drain(app)
    (status, started_early) = rows(conn, "SELECT status, started_at < run_at FROM pgjobs.jobs")[0]
    assert (status, started_early) == ("succeeded", False)


def test_retry_schedule_follows_the_policy_then_dead_letters(app, conn):
    @app.task(name="flaky", max_attempts=3, retry=pgjobs.Linear(step=0.4, jitter=0))
    def flaky() -> None:
        raise RuntimeError("still broken")

    flaky.enqueue()
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        drain(app)
        if rows(conn, "SELECT status FROM pgjobs.jobs") == [("failed",)]:
            break
        time.sleep(0.1)
    ((status, attempts, errors, finished),) = rows(
        conn, "SELECT status, attempts, errors, finished_at IS NOT NULL FROM pgjobs.jobs"
    )
    assert (status, attempts, finished) == ("failed", 3, True)
    assert [e["attempt"] for e in errors] == [1, 2, 3]
    assert {e["type"] for e in errors} == {"RuntimeError"}
    assert all("still broken" in e["traceback"] for e in errors)
    # Each attempt records its worker and start (the dashboard's attempts table),
    # the retried ones (complete.sql's requeue) and the last (its move to the history).
    assert all(isinstance(e["worker_id"], int) for e in errors)
    assert all(e["started_at"] <= e["at"] for e in errors)
    # Attempt n+1 started no earlier than the backoff after attempt n (0.4 s, then 0.8 s).
    gaps = rows(
        conn,
        "SELECT extract(epoch FROM (e2->>'at')::timestamptz - (e1->>'at')::timestamptz)"
        " FROM pgjobs.jobs, jsonb_array_elements(errors) WITH ORDINALITY a(e1, i)"
        " JOIN jsonb_array_elements(errors) WITH ORDINALITY b(e2, j) ON j = i + 1 ORDER BY i",
    )
    assert [float(g[0]) >= want for g, want in zip(gaps, (0.4, 0.8), strict=True)] == [True, True]


def test_unknown_task_fails_clearly_and_the_worker_goes_on(app, conn):
    @app.task(name="known")
    def known() -> str:
        return "fine"

    conn.execute("SELECT pgjobs.enqueue('ghost.task', '{}'::jsonb)")
    known.enqueue()
    drain(app)
    result = dict(rows(conn, "SELECT task, status FROM pgjobs.jobs"))
    assert result == {"ghost.task": "failed", "known": "succeeded"}
    (error,) = rows(conn, "SELECT errors->0 FROM pgjobs.jobs WHERE task = 'ghost.task'")[0]
    assert "unknown task 'ghost.task'" in error["message"]
    assert "registered tasks: known" in error["message"]
    assert rows(conn, "SELECT result FROM pgjobs.jobs WHERE task = 'known'") == [("fine",)]


def test_stored_arguments_that_do_not_fit_fail_without_retry(app, conn):
    @app.task(name="strict", max_attempts=5)
    def strict(a: int) -> None:
        pass

    conn.execute("SELECT pgjobs.enqueue('strict', '{\"b\": 1}'::jsonb, max_attempts => 5)")
    drain(app)
    assert rows(conn, "SELECT status, attempts FROM pgjobs.jobs") == [("failed", 1)]


def test_timeout_exit_and_exceptions_do_not_stop_the_worker(app, conn):
    @app.task(name="slow", timeout=0.2, max_attempts=1)
    async def slow() -> None:
        await asyncio.sleep(10)

    @app.task(name="quitter", max_attempts=1)
    def quitter() -> None:
        sys.exit(3)

    @app.task(name="fine")
    async def fine(x: int) -> dict[str, int]:
        return {"double": 2 * x}

    slow.enqueue()
    quitter.enqueue()
    fine.enqueue(21)
    started = time.monotonic()
    drain(app, concurrency=5)
    assert time.monotonic() - started < 8  # the 10 s sleep was cut short
    outcome = {
        task: (status, err)
        for task, status, err in rows(
            conn, "SELECT task, status, errors->0->>'type' FROM pgjobs.jobs"
        )
    }
    assert outcome == {
        "slow": ("failed", "pgjobs.errors.TaskTimeoutError"),
        "quitter": ("failed", "pgjobs.errors.HandlerExitError"),
        "fine": ("succeeded", None),
    }
    assert rows(conn, "SELECT result FROM pgjobs.jobs WHERE task = 'fine'") == [({"double": 42},)]


def test_a_stopped_worker_leaves_no_row_even_mid_heartbeat(app, conn):
    """A beat racing the clean shutdown must not register the worker again."""

    @app.task(name="brief")
    def brief() -> None:
        pass

    for _ in range(8):
        brief.enqueue()
        # A beat every 2 ms makes the race with the shutdown's DELETE near certain.
        drain(app, heartbeat_interval=0.002, stale_after=30)
        assert rows(conn, "SELECT count(*) FROM pgjobs.workers") == [(0,)]


def test_paused_queue_is_not_claimed(app, conn):
    @app.task(name="paused_work")
    def paused_work() -> None:
        pass

    paused_work.enqueue()
    conn.execute("INSERT INTO pgjobs.queues (name, paused) VALUES ('default', true)")

    async def run_briefly():
        worker = pgjobs.Worker(app, poll_interval=0.05)
        task = asyncio.create_task(worker.run())
        await asyncio.sleep(0.5)
        worker.request_stop()
        await task

    asyncio.run(run_briefly())
    assert rows(conn, "SELECT status FROM pgjobs.jobs") == [("queued",)]
    conn.execute("UPDATE pgjobs.queues SET paused = false")
    drain(app)
    assert rows(conn, "SELECT status FROM pgjobs.jobs") == [("succeeded",)]


def test_an_idle_worker_is_woken_by_notify(app, conn):
    @app.task(name="ping")
    async def ping() -> None:
        pass

    async def main() -> float:
        worker = pgjobs.Worker(app, poll_interval=30)  # polling would take 30 s
        task = asyncio.create_task(worker.run())
        for _ in range(100):
            await asyncio.sleep(0.05)
            if (await fetch_awaiting(worker)) is True:
                break
        start = time.monotonic()
        await ping.enqueue_async()
        # Polling the worker's counter is the point here; it exposes no event.
        while worker.completed == 0 and time.monotonic() - start < 10:  # noqa: ASYNC110
            await asyncio.sleep(0.01)
        elapsed = time.monotonic() - start
        worker.request_stop()
        await task
        await app.aclose()
        return elapsed

    async def fetch_awaiting(worker):
        if worker._pool is None or worker.worker_id is None:
            return None
        got = await fetch(worker._pool, "heartbeat", {"worker_id": worker.worker_id})
        if not got:
            return None
        async with worker._pool.connection() as c:
            cur = await c.execute(
                "SELECT awaiting_work FROM pgjobs.workers WHERE id = %s", (worker.worker_id,)
            )
            return (await cur.fetchone())[0]

    elapsed = asyncio.run(main())
    assert elapsed < 10  # woken by NOTIFY, not by the 30 s poll
    assert rows(conn, "SELECT status FROM pgjobs.jobs") == [("succeeded",)]


def test_drain_async_reports_completed(app):
    @app.task(name="count_me")
    async def count_me(i: int) -> None:
        pass

    app.enqueue_many([count_me.job(i) for i in range(200)])
    worker = asyncio.run(drain_async(app, concurrency=20))
    assert worker.completed == 200


@pytest.mark.parametrize("service", [Fetcher, Completer, Heartbeat, Listener, Leader])
def test_a_worker_whose_service_fails_stops_instead_of_idling(
    app, conn, monkeypatch, capsys, service
):
    """A service error that is not a lost connection (for the claim, what
    PostgreSQL says when a migration changes a column a prepared claim
    returns) ends the service; the worker must then stop, not stay registered
    without it, and say which service failed."""

    @app.task(name="brief")
    def brief() -> None:
        pass

    brief.enqueue()  # the completer's first pass waits for an outcome

    async def broken(self):
        raise psycopg.errors.FeatureNotSupported("cached plan must not change result type")

    monkeypatch.setattr(service, "run_once", broken)

    async def main() -> int:
        worker = pgjobs.Worker(app, poll_interval=0.05, heartbeat_interval=0.1)
        return await asyncio.wait_for(worker.run(), 30)

    assert asyncio.run(main()) == EXIT_LOOP_FAILED
    assert rows(conn, "SELECT count(*) FROM pgjobs.workers") == [(0,)]
    (failed,) = [line for line in capsys.readouterr().err.splitlines() if "loop_failed" in line]
    assert f"loop=pgjobs-{service.name}" in failed
    assert "FeatureNotSupported: cached plan must not change result type" in failed
