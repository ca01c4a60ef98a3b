"""Cancelling a running job on a real PostgreSQL: the request, its fence, rescue, the worker."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import psycopg
import pytest
from psycopg_pool import AsyncConnectionPool

import pgjobs
from pgjobs import _admin
from pgjobs.errors import InvalidTransitionError, JobCancelledError
from pgjobs.testing import drain
from pgjobs.worker._completer import Completer
from pgjobs.worker._db import Outage
from pgjobs.worker._heartbeat import Heartbeat
from pgjobs.worker._outcome import Outcome, succeeded
from pgjobs.worker._rescuer import rescue_once
from tests.integration.test_completer import claimed
from tests.integration.test_rescuer import add_running_jobs, add_worker

Conn = psycopg.Connection[tuple[Any, ...]]


def job(conn: Conn, job_id: int) -> tuple[Any, ...]:
    row = conn.execute(
        "SELECT status::text, result, cancelled_by, cancel_requested_at IS NOT NULL"
        " FROM pgjobs.jobs WHERE id = %s",
        (job_id,),
    ).fetchone()
    assert row is not None
    return row


def complete(dsn: str, worker_id: int, outcomes: list[Outcome]) -> None:
    async def main() -> None:
        async with AsyncConnectionPool(dsn, min_size=1, open=False) as pool:
            completer = Completer(pool, worker_id, Outage(), batch_size=50, interval=0.01)
            try:
                for outcome in outcomes:
                    completer.add(outcome)
                await completer.run_once()
            finally:
                await completer.close()

    asyncio.run(main())


def test_cancel_of_a_running_job_records_the_request_and_tells_its_worker(dsn, conn):
    worker_id, _jobs = claimed(conn, 2)
    with psycopg.connect(dsn, autocommit=True) as listener:
        listener.execute("LISTEN pgjobs_control")
        conn.execute("SELECT pgjobs.cancel(1)")
        conn.execute("SELECT pgjobs.cancel(2, 'cli:ana')")
        got = [(n.channel, n.payload) for n in listener.notifies(timeout=1.0, stop_after=2)]
    assert got == [
        ("pgjobs_control", f"cancel {worker_id} 1"),
        ("pgjobs_control", f"cancel {worker_id} 2"),
    ]
    assert job(conn, 1) == ("running", None, "postgres", True)  # current_user
    assert job(conn, 2) == ("running", None, "cli:ana", True)


def test_a_result_arriving_after_the_cancel_never_overwrites_it(dsn, conn):
    worker_id, jobs = claimed(conn, 3)
    conn.execute("SELECT pgjobs.cancel(1, 'api:root')")
    conn.execute("SELECT pgjobs.cancel(2)")
    retry = Outcome(2, 1, "queued", 60.0, {"attempt": 1, "type": "E", "message": "m"}, None)
    complete(dsn, worker_id, [succeeded(jobs[0], '"late"'), retry, succeeded(jobs[2], '"ok"')])
    assert job(conn, 1) == ("cancelled", None, "api:root", True)
    assert job(conn, 2) == ("cancelled", None, "postgres", True)  # not put back in line
    assert job(conn, 3) == ("succeeded", "ok", None, False)
    history = conn.execute("SELECT count(*) FROM pgjobs.job_history WHERE status = 'cancelled'")
    assert history.fetchone() == (2,)


def test_the_workers_cancelled_outcome_ends_the_job_cancelled(dsn, conn):
    worker_id, _jobs = claimed(conn, 1)
    conn.execute("SELECT pgjobs.cancel(1)")
    complete(dsn, worker_id, [Outcome(1, 1, "cancelled", 0.0, None, None)])
    assert job(conn, 1) == ("cancelled", None, "postgres", True)


def test_a_dead_workers_cancel_requested_job_is_cancelled_not_rescued(dsn, conn):
    dead = add_worker(conn, "1 hour")
    add_running_jobs(conn, dead, [1, 1])
    conn.execute("SELECT pgjobs.cancel(1)")

    async def rescue() -> dict[str, int]:
        async with AsyncConnectionPool(dsn, min_size=1, open=False) as pool:
            return await rescue_once(pool, stale_after=30)

    counts = asyncio.run(rescue())
    assert (counts["requeued"], counts["failed"], counts["cancelled"]) == (1, 0, 1)
    assert job(conn, 1) == ("cancelled", None, "postgres", True)
    assert job(conn, 2)[0] == "queued"


def test_the_heartbeat_hands_over_the_cancels_its_worker_missed(dsn, conn):
    worker_id, _ = claimed(conn, 3)
    conn.execute("SELECT pgjobs.cancel(2)")
    asked: list[int] = []

    async def beat() -> None:
        async with AsyncConnectionPool(dsn, min_size=1, open=False) as pool:

            async def reregister() -> None:
                raise AssertionError("the row is there")

            await Heartbeat(
                pool, worker_id, 5.0, Outage(), reregister, on_cancel=asked.append
            ).run_once()

    asyncio.run(beat())
    assert asked == [2]


def test_cancel_of_a_finished_job_is_refused_and_changes_nothing(dsn, conn):
    worker_id, jobs = claimed(conn, 1)
    complete(dsn, worker_id, [succeeded(jobs[0], '"ok"')])
    with pytest.raises(InvalidTransitionError, match="job 1 is succeeded already"):
        _admin.cancel_job(conn, 1)
    assert job(conn, 1) == ("succeeded", "ok", None, False)


def test_a_bulk_cancel_stops_running_jobs_too(dsn, conn):
    _worker_id, _ = claimed(conn, 2)
    conn.execute("INSERT INTO pgjobs.jobs (task) VALUES ('done'), ('other')")
    result = _admin.cancel_jobs(conn, task="done", by="cli:bo")
    assert result.per_queue == {"default": 3}
    assert [job(conn, i) for i in (1, 2, 3)] == [
        ("running", None, "cli:bo", True),
        ("running", None, "cli:bo", True),
        ("cancelled", None, "cli:bo", True),
    ]
    assert job(conn, 4)[0] == "queued"


# -- through a real (in-process) worker -------------------------------------------


@pytest.fixture
def app(dsn):
    application = pgjobs.App(dsn)
    yield application
    application.close()


def _cancel_when_running(app: pgjobs.App, conn: Conn, job_id: int) -> threading.Thread:
    def cancel() -> None:
        deadline = time.monotonic() + 20
        while job(conn, job_id)[0] != "running" and time.monotonic() < deadline:
            time.sleep(0.02)
        time.sleep(0.2)
        app.cancel(job_id, by="test")

    thread = threading.Thread(target=cancel)
    thread.start()
    return thread


def test_a_running_async_handler_is_cancelled_through_asyncio(app, dsn):
    seen: list[str] = []

    @app.task(name="slow")
    async def slow() -> str:
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            seen.append("cancelled")
            raise
        return "finished"

    job_id = slow.enqueue()
    with psycopg.connect(dsn, autocommit=True) as conn:
        thread = _cancel_when_running(app, conn, job_id)
        drain(app, timeout=20)
        thread.join()
        assert job(conn, job_id) == ("cancelled", None, "test", True)
    assert seen == ["cancelled"]
    with pytest.raises(JobCancelledError, match="cancelled by test"):
        app.result(job_id)


def test_a_running_sync_handler_sees_the_flag_and_stops(app, dsn):
    @app.task(name="loop")
    def loop() -> str:
        current = pgjobs.current_job()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            current.raise_if_cancelled()
            time.sleep(0.01)
        return "finished"

    job_id = loop.enqueue()
    with psycopg.connect(dsn, autocommit=True) as conn:
        thread = _cancel_when_running(app, conn, job_id)
        drain(app, timeout=20)
        thread.join()
        assert job(conn, job_id) == ("cancelled", None, "test", True)


def test_a_sync_handler_that_ignores_the_cancel_still_ends_cancelled(app, dsn):
    @app.task(name="deaf")
    def deaf() -> str:
        time.sleep(1.0)
        return "done anyway"

    job_id = deaf.enqueue()
    with psycopg.connect(dsn, autocommit=True) as conn:
        thread = _cancel_when_running(app, conn, job_id)
        drain(app, timeout=20)
        thread.join()
        assert job(conn, job_id) == ("cancelled", None, "test", True)
