"""How many connections a `python -m pgjobs worker` process holds, read from pg_stat_activity."""

from __future__ import annotations

import time

import pytest

from pgjobs import _names
from tests.apps.basic import asleepy
from tests.conftest import wait_until

APP = "tests.apps.basic:app"
#: Each count is read this many times, a few beats apart, and the largest kept:
#: a connection opened for a moment must be caught too.
READS = 20


@pytest.fixture
def producer(dsn):
    """The test app itself, pointed at this session's database, for enqueueing."""
    app = asleepy.app
    app.dsn = dsn
    yield app
    app.close()


def connections(conn, pid: int) -> dict[str, int]:
    """The worker process's connections, by application name without the pid tag."""
    tag = _names.with_pid("", pid)
    rows = conn.execute(
        "SELECT application_name, count(*) FROM pg_stat_activity"
        " WHERE application_name LIKE '%%' || %s GROUP BY 1",
        (tag,),
    ).fetchall()
    return {name.removesuffix(tag): count for name, count in rows}


def most_connections(conn, pid: int) -> tuple[int, dict[str, int]]:
    """The largest total seen over READS reads, a tenth of a second apart, and its breakdown."""
    worst: tuple[int, dict[str, int]] = (0, {})
    for _ in range(READS):
        seen = connections(conn, pid)
        worst = max(worst, (sum(seen.values()), seen), key=lambda item: item[0])
        time.sleep(0.1)
    return worst


def leads(conn, pid: int) -> bool:
    return bool(
        conn.execute(
            "SELECT count(*) FROM pg_stat_activity a JOIN pg_locks l ON l.pid = a.pid"
            " WHERE l.locktype = 'advisory' AND l.classid = %s AND l.objid = %s"
            " AND l.objsubid = 1 AND a.application_name = %s",
            (
                _names.LEADER_LOCK_CLASSID,
                _names.LEADER_LOCK_OBJID,
                _names.with_pid(_names.APP_NAME_LEADER, pid),
            ),
        ).fetchone()[0]
    )


def settle(conn, worker, most: int) -> None:
    """Let the worker start and its pool shed what the start-up opened (POOL_MAX_IDLE)."""
    worker.wait_for_output("worker.started")
    wait_until(lambda: sum(connections(conn, worker.pid).values()) <= most, timeout=40)


@pytest.mark.slow
def test_an_idle_worker_holds_at_most_five_connections(dsn, conn, start_worker):
    # The pool's minimum, the claims' and the outcomes' connections (this one
    # opens with the first outcome), the listener, and the leader's (which a
    # follower keeps to try for the lock).
    leader = start_worker(APP)
    wait_until(lambda: leads(conn, leader.pid))
    follower = start_worker(APP)
    for worker in (leader, follower):
        settle(conn, worker, 5)
    assert leads(conn, leader.pid)
    assert not leads(conn, follower.pid)
    for worker in (leader, follower):
        total, seen = most_connections(conn, worker.pid)
        assert total <= 5, seen


@pytest.mark.slow
def test_a_busy_worker_at_concurrency_100_holds_at_most_six(dsn, conn, producer, start_worker):
    # Jobs of a fifth of a second: claims, outcomes and heartbeats all the time.
    jobs = [asleepy.job(f"s{i}", 0.2) for i in range(6000)]
    for start in range(0, len(jobs), 1000):
        producer.enqueue_many(jobs[start : start + 1000])
    args = ("--concurrency", "100", "--heartbeat-interval", "0.5", "--leader-interval", "0.5")
    leader = start_worker(APP, *args)
    wait_until(lambda: leads(conn, leader.pid))
    follower = start_worker(APP, *args)
    follower.wait_for_output("worker.started")
    for worker in (leader, follower):
        total, seen = most_connections(conn, worker.pid)
        assert total <= 6, seen
    # The counts were read while both workers were busy.
    assert (
        conn.execute(
            "SELECT count(DISTINCT worker_id) FROM pgjobs.jobs WHERE status = 'running'"
        ).fetchone()[0]
        == 2
    )
