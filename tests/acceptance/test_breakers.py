"""A circuit breaker across a real worker: opens after N failures, holds, lets one trial through.

The handlers (tests/apps/breaker.py) record each run with the breaker's
state as it started, on the database clock; the assertions read that table
and pgjobs.jobs, never the test's own clock.
"""

from __future__ import annotations

import pytest

from tests.apps.breaker import TABLES, app, flaky, steady
from tests.conftest import wait_until

APP = "tests.apps.breaker:app"


@pytest.fixture
def producer(dsn, conn):
    conn.execute(TABLES)
    conn.execute("TRUNCATE breaker_runs, breaker_switch")
    app.dsn = dsn
    yield app
    app.close()


def one(conn, sql, *params):
    return conn.execute(sql, params).fetchone()[0]


def state(conn):
    """The breaker's state; None before the worker has written it."""
    row = conn.execute("SELECT state FROM pgjobs.task_breakers WHERE task = 'flaky'").fetchone()
    return None if row is None else row[0]


@pytest.mark.slow
def test_a_failing_task_opens_its_breaker_and_one_trial_closes_it(conn, producer, start_worker):
    conn.execute("INSERT INTO breaker_switch VALUES (true)")
    total = 20
    producer.enqueue_many([flaky.job() for _ in range(total)])
    start_worker(
        APP,
        "--queues",
        "work",
        "--concurrency",
        "2",
        "--rescue-interval",
        "0.2",
        "--poll-interval",
        "0.2",
    )
    wait_until(lambda: state(conn) == "open", timeout=60)
    wait_until(
        lambda: (
            one(
                conn, "SELECT count(*) FROM pgjobs.jobs WHERE task = 'flaky' AND status = 'running'"
            )
            == 0
        ),
        timeout=30,
    )
    # From here on, the open breaker is committed and no flaky job runs.
    held_since = one(conn, "SELECT now()")
    failed = one(
        conn, "SELECT count(*) FROM pgjobs.jobs WHERE task = 'flaky' AND status = 'failed'"
    )
    # Three failures opened it; jobs claimed before it opened may have failed too.
    assert 3 <= failed < total
    retry_at = one(conn, "SELECT retry_at FROM pgjobs.task_breakers WHERE task = 'flaky'")
    assert one(conn, "SELECT consecutive_failures FROM pgjobs.task_breakers") == 3
    conn.execute("UPDATE breaker_switch SET failing = false")
    # Other tasks of the same queue run while the breaker holds flaky's jobs.
    producer.enqueue_many([steady.job() for _ in range(5)])
    wait_until(
        lambda: (
            one(
                conn,
                "SELECT count(*) FROM pgjobs.jobs WHERE task = 'steady' AND status = 'succeeded'",
            )
            == 5
        ),
        timeout=30,
    )
    wait_until(lambda: state(conn) == "closed", timeout=60)
    wait_until(
        lambda: (
            one(
                conn,
                "SELECT count(*) FROM pgjobs.jobs WHERE task = 'flaky' AND status = 'succeeded'",
            )
            == total - failed
        ),
        timeout=60,
    )
    # No flaky run began while the breaker was open.
    assert (
        one(
            conn,
            "SELECT count(*) FROM breaker_runs WHERE task = 'flaky'"
            " AND started_at >= %s AND started_at < %s",
            held_since,
            retry_at,
        )
        == 0
    )
    # Exactly one run was let through half-open: the trial, after the cooldown.
    trials = conn.execute(
        "SELECT job_id, trial_job_id, started_at >= %s FROM breaker_runs"
        " WHERE task = 'flaky' AND breaker_state = 'half_open'",
        [retry_at],
    ).fetchall()
    assert len(trials) == 1
    [(job_id, trial_job_id, after_cooldown)] = trials
    assert job_id == trial_job_id
    assert after_cooldown
    # The steady jobs ran while flaky's were held.
    assert (
        one(
            conn,
            "SELECT count(*) FROM breaker_runs WHERE task = 'steady' AND breaker_state = 'open'",
        )
        >= 1
    )
    assert one(conn, "SELECT consecutive_failures FROM pgjobs.task_breakers") == 0
