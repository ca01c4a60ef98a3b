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
WORKER = _names.APP_NAME_WORKER
LISTENER = _names.APP_NAME_LISTENER
LEADER = _names.APP_NAME_LEADER


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
    """Wait until the worker holds at most `most` (its claims' and outcomes' close when idle)."""
    worker.wait_for_output("worker.started")
    wait_until(lambda: sum(connections(conn, worker.pid).values()) <= most, timeout=60)


def run_jobs(conn, producer, count: int) -> None:
    """Enqueue `count` short jobs at once and wait until every one has run."""
    producer.enqueue_many([asleepy.job(f"burst{i}", 0.01) for i in range(count)])
    wait_until(
        lambda: (
            conn.execute("SELECT count(*) FROM test_runs WHERE note = 'end'").fetchone()[0] >= count
        ),
        timeout=60,
    )


@pytest.mark.slow
def test_an_idle_worker_holds_at_most_three_connections(dsn, conn, producer, start_worker):
    # The pool's one connection and the listener's; the leader's only while
    # it leads (a follower looks at the lock through its pool).
    leader = start_worker(APP)
    wait_until(lambda: leads(conn, leader.pid))
    follower = start_worker(APP)
    follower.wait_for_output("worker.started")
    # A burst of jobs: the claims and outcomes open connections of their own ...
    run_jobs(conn, producer, 400)
    # ... and close them once idle.
    settle(conn, leader, 3)
    settle(conn, follower, 2)
    assert leads(conn, leader.pid)
    assert not leads(conn, follower.pid)
    total, seen = most_connections(conn, leader.pid)
    assert total <= 3, seen
    assert seen == {WORKER: 1, LISTENER: 1, LEADER: 1}
    total, seen = most_connections(conn, follower.pid)
    assert total <= 2, seen
    assert seen == {WORKER: 1, LISTENER: 1}


@pytest.mark.slow
def test_a_busy_worker_at_concurrency_100_holds_at_most_five(dsn, conn, producer, start_worker):
    # Jobs of a fifth of a second: claims, outcomes and heartbeats all the time.
    jobs = [asleepy.job(f"s{i}", 0.2) for i in range(6000)]
    for start in range(0, len(jobs), 1000):
        producer.enqueue_many(jobs[start : start + 1000])
    args = ("--concurrency", "100", "--heartbeat-interval", "0.5", "--leader-interval", "0.5")
    leader = start_worker(APP, *args)
    wait_until(lambda: leads(conn, leader.pid))
    follower = start_worker(APP, *args)
    follower.wait_for_output("worker.started")
    wait_until(lambda: connections(conn, follower.pid).get(WORKER, 0) == 3)
    busiest = {}
    for name, worker in (("leader", leader), ("follower", follower)):
        busiest[name] = most_connections(conn, worker.pid)
    # The counts were read while both workers were busy.
    assert (
        conn.execute(
            "SELECT count(DISTINCT worker_id) FROM pgjobs.jobs WHERE status = 'running'"
        ).fetchone()[0]
        == 2
    )
    # The pool's, the claims', the outcomes', the listener's and the leader's.
    total, seen = busiest["leader"]
    assert total <= 5, seen
    assert seen == {WORKER: 3, LISTENER: 1, LEADER: 1}
    total, seen = busiest["follower"]
    assert total <= 4, seen
    assert seen == {WORKER: 3, LISTENER: 1}
