"""SIGTERM under load, and handlers that overrun or ignore cancellation."""

from __future__ import annotations

import signal
import time

from tests.chaos.app import app as chaos_app
from tests.chaos.app import record, slow_async, stuck
from tests.chaos.conftest import FAST, assert_nothing_lost, enqueue_records, scalar
from tests.conftest import wait_until

JOBS = 2000


def test_sigterm_during_a_busy_drain_loses_nothing(cluster, workers, report):
    enqueue_records(cluster.dsn, JOBS, work=0.02)
    keys = {f"k{i}" for i in range(JOBS)}
    args = ["--concurrency", "8", "--grace-period", "10", *FAST]
    first = [workers(*args) for _ in range(3)]
    with cluster.connect() as conn:
        wait_until(lambda: scalar(conn, "SELECT count(*) FROM test_runs") >= JOBS // 3, timeout=60)
        in_flight = scalar(conn, "SELECT count(*) FROM pgjobs.jobs WHERE status = 'running'")
        began = time.monotonic()
        for worker in first:
            worker.signal(signal.SIGTERM)
        codes = [w.wait(30) for w in first]
        stopped_in = round(time.monotonic() - began, 2)
        assert codes == [0, 0, 0]
        # Stopped cleanly: nothing held, nobody registered, and the rest still queued.
        assert scalar(conn, "SELECT count(*) FROM pgjobs.jobs WHERE status = 'running'") == 0
        assert scalar(conn, "SELECT count(*) FROM pgjobs.workers") == 0
        left = scalar(conn, "SELECT count(*) FROM pgjobs.jobs WHERE status = 'queued'")
        assert left > 0, "the drain ended before SIGTERM; raise JOBS"
        # In-flight jobs finished within the grace period: no job ran twice.
        assert scalar(conn, "SELECT count(*) - count(DISTINCT job_key) FROM test_runs") == 0
        second = workers(*args)
        wait_until(
            lambda: (
                scalar(conn, "SELECT count(*) FROM pgjobs.jobs WHERE status = 'succeeded'") == JOBS
            ),
            timeout=60,
        )
        second.signal(signal.SIGTERM)
        assert second.wait(30) == 0
        numbers = assert_nothing_lost(conn, keys)
    assert numbers["duplicates"] == 0
    report(**numbers, lost=0, in_flight_at_sigterm=in_flight, stopped_in=stopped_in, left=left)


def _enqueue(dsn, *calls):
    chaos_app.dsn = dsn
    try:
        return [task.enqueue(*args) for task, *args in calls]
    finally:
        chaos_app.close()


def test_timeouts_fire_and_stuck_threads_neither_starve_nor_block(cluster, workers, report):
    # Two sync handlers that sleep through their 1 s timeout (a thread cannot
    # be interrupted), one async handler past its 0.5 s timeout, then plain
    # jobs: the plain jobs must not wait behind the stuck threads.
    stuck_ids = _enqueue(cluster.dsn, (stuck, "stuck-a", 60.0), (stuck, "stuck-b", 60.0))
    (async_id,) = _enqueue(cluster.dsn, (slow_async, "async", 30.0))
    worker = workers("--concurrency", "2", "--grace-period", "1", *FAST)
    with cluster.connect() as conn:
        wait_until(
            lambda: scalar(conn, "SELECT count(*) FROM test_runs WHERE note = 'start'") >= 2,
            timeout=20,
        )
        began = time.monotonic()
        plain = _enqueue(cluster.dsn, *[(record, f"plain{i}") for i in range(5)])
        wait_until(
            lambda: (
                scalar(
                    conn,
                    "SELECT count(*) FROM pgjobs.jobs WHERE id = ANY(%s) AND status = 'succeeded'",
                    plain,
                )
                == 5
            ),
            timeout=20,
        )
        plain_done = round(time.monotonic() - began, 2)
        # The async handler was cancelled at its timeout, retried, and dead-lettered.
        wait_until(
            lambda: (
                scalar(conn, "SELECT status::text FROM pgjobs.jobs WHERE id = %s", async_id)
                == "failed"
            ),
            timeout=20,
        )
        types = scalar(
            conn,
            "SELECT array_agg(e->>'type') FROM pgjobs.jobs, jsonb_array_elements(errors) e"
            " WHERE id = %s",
            async_id,
        )
        assert types == ["pgjobs.errors.TaskTimeoutError"] * 2
        assert scalar(conn, "SELECT count(*) FROM test_runs WHERE job_key = 'async'") == 2
        # Stop while the stuck threads still sleep: the grace period bounds the exit.
        stop_began = time.monotonic()
        worker.signal(signal.SIGTERM)
        assert worker.wait(20) == 0
        stopped_in = round(time.monotonic() - stop_began, 2)
        statuses = [
            scalar(conn, "SELECT status::text FROM pgjobs.jobs WHERE id = %s", job_id)
            for job_id in stuck_ids
        ]
        # Not lost: each stuck job is retrying, back in the queue, or dead-lettered
        # after its timeouts; none is left running.
        assert all(s in ("queued", "failed") for s in statuses), statuses
        assert scalar(conn, "SELECT count(*) FROM pgjobs.jobs WHERE status = 'running'") == 0
    assert stopped_in < 6
    report(plain_jobs_done_after=plain_done, stopped_in=stopped_in, stuck_statuses=statuses)
