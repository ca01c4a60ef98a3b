"""Queue and key concurrency limits hold across worker processes, kills and live changes.

Each job records its start and end in a table (tests/apps/flow.py) on the
database clock; the largest number of runs that overlap is counted there.
A SIGKILLed worker's runs that never recorded an end are closed at the kill:
its process ran nothing after it.
"""

from __future__ import annotations

import signal

import psycopg
import pytest

from tests.apps.flow import SPANS, app, session_name, span
from tests.conftest import wait_until

APP = "tests.apps.flow:app"
#: A dead worker's jobs are rescued within about two seconds.
FAST = [
    "--queues",
    "limited,keyed",
    "--heartbeat-interval",
    "0.3",
    "--stale-after",
    "2",
    "--rescue-interval",
    "0.5",
    "--poll-interval",
    "0.5",
]

#: The most runs that were going at once, per key (NULL key: the queue as a whole).
OVERLAP = """
WITH edges AS (
    SELECT CASE WHEN %(by_key)s THEN key END AS k, started_at AS at, 1 AS delta
    FROM flow_spans WHERE queue = %(queue)s
    UNION ALL
    SELECT CASE WHEN %(by_key)s THEN key END, ended_at, -1
    FROM flow_spans WHERE queue = %(queue)s
), running AS (
    -- An end sorts before a start at the same instant: those runs did not overlap.
    SELECT k, sum(delta) OVER (PARTITION BY k ORDER BY at, delta ROWS UNBOUNDED PRECEDING) AS n
    FROM edges
)
SELECT coalesce(max(n), 0) FROM running
"""


@pytest.fixture
def producer(dsn, conn):
    conn.execute(SPANS)
    conn.execute("TRUNCATE flow_spans")
    app.dsn = dsn
    yield app
    app.close()


def count(conn, sql, *params):
    return conn.execute(sql, params).fetchone()[0]


def overlap(conn, queue, *, by_key=False):
    unended = conn.execute("SELECT pid, key, started_at FROM flow_spans WHERE ended_at IS NULL")
    assert unended.fetchall() == []
    sql = OVERLAP.replace("%(by_key)s", "true" if by_key else "false")
    return conn.execute(sql, {"queue": queue}).fetchone()[0]


def succeeded(conn):
    return count(conn, "SELECT count(*) FROM pgjobs.jobs WHERE status = 'succeeded'")


def sessions(conn, pid):
    """How many of the handlers' connections in process `pid` the server still holds."""
    sql = "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s"
    return count(conn, sql, session_name(pid))


def kill(conn, worker):
    """SIGKILL the worker and close its unfinished runs: nothing of it runs any more.

    A statement the worker had sent before it died still runs to its end on
    the server (a span's INSERT can commit after the kill): its sessions are
    waited out before its runs are closed.
    """
    worker.signal(signal.SIGKILL)
    worker.wait()
    wait_until(lambda: sessions(conn, worker.pid) == 0, timeout=30)
    conn.execute(
        "UPDATE flow_spans SET ended_at = clock_timestamp() WHERE pid = %s AND ended_at IS NULL",
        [worker.pid],
    )


def drain_with_kills(conn, producer, start_worker, total):
    """Three workers drain `total` jobs; one is SIGKILLed and replaced at 1/3, another at 2/3."""
    workers = [start_worker(APP, "--concurrency", "4", *FAST) for _ in range(3)]
    for share, victim in ((1, 0), (2, 1)):
        done = total * share // 3
        wait_until(lambda done=done: succeeded(conn) >= done, timeout=180, interval=0.1)
        kill(conn, workers[victim])
        workers[victim] = start_worker(APP, "--concurrency", "4", *FAST)
    wait_until(lambda: succeeded(conn) == total, timeout=180, interval=0.2)


@pytest.mark.slow
def test_a_queue_limited_to_3_never_runs_more_across_three_workers_and_kills(
    conn, producer, start_worker
):
    total = 2000
    producer.enqueue_many(
        [span.options(queue="limited").job("limited", None, 0.01) for _ in range(total)]
    )
    drain_with_kills(conn, producer, start_worker, total)
    assert count(conn, "SELECT concurrency FROM pgjobs.queues WHERE name = 'limited'") == 3
    # The limit was reached (the workers had 12 slots) and never passed.
    assert overlap(conn, "limited") == 3
    # The killed worker's jobs were run again: every job ran to its end once at least.
    assert count(conn, "SELECT count(*) FROM flow_spans") >= total


@pytest.mark.slow
def test_key_concurrency_1_runs_one_job_per_key_across_three_workers_and_kills(
    conn, producer, start_worker
):
    total = 2000
    keys = [f"customer:{i}" for i in range(50)]
    producer.enqueue_many(
        [
            span.options(queue="keyed", key=keys[i % len(keys)]).job(
                "keyed", keys[i % len(keys)], 0.02
            )
            for i in range(total)
        ]
    )
    drain_with_kills(conn, producer, start_worker, total)
    assert count(conn, "SELECT key_concurrency FROM pgjobs.queues WHERE name = 'keyed'") == 1
    assert overlap(conn, "keyed", by_key=True) == 1
    # Different keys did run side by side.
    assert overlap(conn, "keyed") > 1
    assert count(conn, "SELECT count(DISTINCT key) FROM pgjobs.jobs WHERE queue = 'keyed'") == 50


def test_keys_alone_let_a_tenant_run_beside_another_tenants_backlog(conn, producer, start_worker):
    # No limit on the queue: its jobs' keys take turns all the same.
    producer.enqueue_many(
        [span.options(queue="shared", key="a").job("shared", "a", 0.02) for _ in range(500)]
    )
    start_worker(APP, "--concurrency", "2", *FAST, "--queues", "shared")
    wait_until(lambda: count(conn, "SELECT count(*) FROM flow_spans") > 0, timeout=30)
    producer.enqueue_many(
        [span.options(queue="shared", key="b").job("shared", "b", 0.02) for _ in range(3)]
    )
    wait_until(
        lambda: (
            count(conn, "SELECT count(*) FROM flow_spans WHERE key = 'b' AND ended_at IS NOT NULL")
            == 3
        ),
        timeout=30,
    )
    # A's backlog, five seconds of work at two slots, is far from done: B
    # did not wait for it (oldest first, B's jobs would have run last).
    assert count(conn, "SELECT count(*) FROM pgjobs.jobs_live WHERE key = 'a'") > 250


def test_a_limit_set_from_sql_holds_at_once_and_can_be_raised_live(conn, producer, start_worker):
    # A queue that the code does not limit, limited from SQL while a worker
    # serves it: the next claims already keep to it.
    worker = start_worker(APP, "--concurrency", "6", *FAST, "--queues", "open")
    worker.wait_for_output("worker.started")
    conn.execute("INSERT INTO pgjobs.queues (name, concurrency) VALUES ('open', 2)")
    producer.enqueue_many([span.options(queue="open").job("open", None, 0.2) for _ in range(20)])
    wait_until(lambda: succeeded(conn) == 20, timeout=60, interval=0.1)
    assert overlap(conn, "open") == 2
    conn.execute("TRUNCATE flow_spans")
    conn.execute("UPDATE pgjobs.queues SET concurrency = 5 WHERE name = 'open'")
    producer.enqueue_many([span.options(queue="open").job("open", None, 0.2) for _ in range(20)])
    wait_until(lambda: succeeded(conn) == 40, timeout=60, interval=0.1)
    assert overlap(conn, "open") == 5
    # Cleared, the queue is claimed by the fast statement again, up to the worker's 6.
    conn.execute("TRUNCATE flow_spans")
    conn.execute("UPDATE pgjobs.queues SET concurrency = NULL WHERE name = 'open'")
    producer.enqueue_many([span.options(queue="open").job("open", None, 0.2) for _ in range(24)])
    wait_until(lambda: succeeded(conn) == 64, timeout=60, interval=0.1)
    assert overlap(conn, "open") == 6
    # A zero or negative limit is refused by the table.
    for bad in (0, -1):
        with pytest.raises(psycopg.errors.CheckViolation, match="queues_concurrency_positive"):
            conn.execute("UPDATE pgjobs.queues SET concurrency = %s WHERE name = 'open'", [bad])
