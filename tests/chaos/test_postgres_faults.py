"""PostgreSQL itself restarted or killed mid-drain: the workers ride it out on their own."""

from __future__ import annotations

import signal
import time
from typing import Any

import pytest

from pgjobs._names import APP_NAME_LISTENER, LEADER_LOCK_CLASSID, LEADER_LOCK_OBJID
from tests.chaos.conftest import Cluster, assert_nothing_lost, enqueue_records, events, scalar
from tests.conftest import wait_until

JOBS = 3000
WORKERS = 3
# Heartbeats are quick, but a worker counts as dead only after 10 s of
# silence: a few seconds of outage must not look like three dead workers.
# The poll is slow on purpose, so that a quick wake-up proves LISTEN works.
ARGS = [
    "--concurrency",
    "8",
    "--heartbeat-interval",
    "0.5",
    "--stale-after",
    "10",
    "--rescue-interval",
    "1",
    "--leader-interval",
    "0.5",
    "--poll-interval",
    "2",
]

LEADERS = f"""
    SELECT count(*) FROM pg_locks
    WHERE locktype = 'advisory' AND granted
      AND classid = {LEADER_LOCK_CLASSID} AND objid = {LEADER_LOCK_OBJID}
"""
LISTENERS = (
    f"SELECT count(*) FROM pg_stat_activity WHERE application_name LIKE '{APP_NAME_LISTENER}%%'"
)


def succeeded(conn: Any) -> int:
    return int(scalar(conn, "SELECT count(*) FROM pgjobs.jobs WHERE status = 'succeeded'"))


def wake_latency(cluster: Cluster, key: str) -> float:
    """Seconds from the commit of one job to its start, with every worker idle."""
    from tests.chaos.app import app, record

    app.dsn = cluster.dsn
    try:
        job_id = record.enqueue(key)
    finally:
        app.close()
    with cluster.connect() as conn:
        wait_until(
            lambda: (
                scalar(conn, "SELECT status::text FROM pgjobs.jobs WHERE id = %s", job_id)
                == "succeeded"
            ),
            timeout=10,
            interval=0.02,
        )
        return float(
            scalar(
                conn,
                "SELECT extract(epoch FROM started_at - created_at) FROM pgjobs.jobs WHERE id = %s",
                job_id,
            )
        )


def _until(predicate: Any, since: float, timeout: float = 30) -> float:
    wait_until(predicate, timeout=timeout, interval=0.02)
    return round(time.monotonic() - since, 2)


@pytest.mark.parametrize("fault", ["fast_restart", "kill9"])
def test_postgres_outage_mid_drain(cluster, workers, report, fault):
    enqueue_records(cluster.dsn, JOBS, work=0.005)
    keys = {f"k{i}" for i in range(JOBS)}
    pool = [workers(*ARGS) for _ in range(WORKERS)]
    with cluster.connect() as conn:
        wait_until(lambda: succeeded(conn) >= JOBS // 4, timeout=60, interval=0.05)
        assert scalar(conn, LISTENERS) == WORKERS
        assert scalar(conn, LEADERS) == 1
        before = succeeded(conn)

    began = time.monotonic()
    if fault == "fast_restart":
        cluster.stop("fast")
    else:
        cluster.kill9()
    time.sleep(2)  # down long enough for every loop to notice
    cluster.start()
    ready = time.monotonic()
    if fault == "kill9":
        assert "not properly shut down" in cluster.log()  # crash recovery ran

    with cluster.connect() as conn:
        assert succeeded(conn) < JOBS, "the drain ended before the fault; raise JOBS"
        progressed = _until(lambda: succeeded(conn) > before + 100, ready)
        leader_back = _until(lambda: scalar(conn, LEADERS) == 1, ready)
        listeners_back = _until(lambda: scalar(conn, LISTENERS) == WORKERS, ready)
        wait_until(lambda: succeeded(conn) == JOBS, timeout=120, interval=0.1)
        drained = round(time.monotonic() - ready, 1)
    latencies = [wake_latency(cluster, f"probe{i}") for i in range(5)]
    keys |= {f"probe{i}" for i in range(5)}

    for worker in pool:
        worker.signal(signal.SIGTERM)
    assert [w.wait(30) for w in pool] == [0] * WORKERS
    with cluster.connect() as conn:
        numbers = assert_nothing_lost(conn, keys)
        assert scalar(conn, "SELECT count(*) FROM pgjobs.workers") == 0

    outage_lines = []
    for worker in pool:
        logged = events(worker)
        names = [e["event"] for e in logged]
        # One outage, one line, whichever loop noticed first; not one per job or
        # per reconnect attempt. A loop whose kept connection died with the
        # server may report a second, short episode just after recovery (on a
        # loaded machine), so up to two are accepted, and the worker must log
        # that it recovered.
        where = [e.get("where") for e in logged if e["event"] == "db.unavailable"]
        outage_lines.append(len(where))
        assert 1 <= len(where) <= 2, (names, where)
        assert names.count("db.recovered") >= 1, names
        # Structured lines only: no traceback, no per-reconnect chatter from the pool.
        assert all(line.startswith("{") for line in worker.output().splitlines())
    # Wake-ups arrive by NOTIFY, not by the 2 s poll.
    assert max(latencies) < 1.0, latencies
    report(
        fault=fault,
        **numbers,
        lost=0,
        down_seconds=round(ready - began, 2),
        jobs_flowing_after=progressed,
        leader_back_after=leader_back,
        listeners_back_after=listeners_back,
        drained_after=drained,
        wake_latency_max=round(max(latencies), 3),
        outage_lines_per_worker=outage_lines,
    )
