"""`python -m pgjobs worker` as a subprocess, observed only through the database and signals."""

from __future__ import annotations

import json
import signal
import subprocess
import sys

import psycopg
import pytest
from psycopg.conninfo import make_conninfo

from tests.apps.basic import record, sleepy
from tests.conftest import REPO, wait_until

APP = "tests.apps.basic:app"


@pytest.fixture
def producer(dsn):
    """The test app itself, pointed at this session's database, for enqueueing."""
    app = record.app
    app.dsn = dsn
    yield app
    app.close()


def count(conn, sql, *params):
    return conn.execute(sql, params).fetchone()[0]


@pytest.mark.slow
def test_three_workers_run_5000_jobs_exactly_once(dsn, conn, producer, start_worker):
    specs = [record.job(f"k{i}") for i in range(5000)]
    for start in range(0, len(specs), 1000):
        producer.enqueue_many(specs[start : start + 1000])
    workers = [start_worker(APP, "--concurrency", "10") for _ in range(3)]
    wait_until(
        lambda: count(conn, "SELECT count(*) FROM pgjobs.jobs WHERE status = 'succeeded'") == 5000,
        timeout=180,
        interval=0.5,
    )
    assert count(conn, "SELECT count(*) FROM test_runs") == 5000
    assert count(conn, "SELECT count(DISTINCT job_key) FROM test_runs") == 5000
    # Every worker took a share: the claims really were concurrent.
    assert count(conn, "SELECT count(DISTINCT pid) FROM test_runs") == 3
    for worker in workers:
        worker.signal(signal.SIGTERM)
    assert [w.wait() for w in workers] == [0, 0, 0]
    assert count(conn, "SELECT count(*) FROM pgjobs.workers") == 0


def test_sigkill_mid_job_is_rescued(dsn, conn, producer, start_worker):
    sleepy.enqueue("victim", 30.0)
    doomed = start_worker(APP, "--heartbeat-interval", "0.5", "--stale-after", "2")
    wait_until(lambda: count(conn, "SELECT count(*) FROM test_runs WHERE note = 'start'") == 1)
    assert count(conn, "SELECT status::text FROM pgjobs.jobs") == "running"
    doomed.signal(signal.SIGKILL)
    doomed.wait()
    # A surviving worker's rescuer returns the job once the heartbeat is stale;
    # make the retry quick and the sleep short by editing the job, as an operator could.
    conn.execute("UPDATE pgjobs.jobs SET args = jsonb_set(args, '{seconds}', '0.1')")
    start_worker(
        APP, "--heartbeat-interval", "0.5", "--stale-after", "2", "--rescue-interval", "0.5"
    )
    wait_until(
        lambda: count(conn, "SELECT status::text FROM pgjobs.jobs") == "succeeded", timeout=30
    )
    attempts, errors = conn.execute("SELECT attempts, errors FROM pgjobs.jobs").fetchone()
    assert attempts == 2  # the killed attempt counts
    assert [e["type"] for e in errors] == ["pgjobs.WorkerLost"]
    assert count(conn, "SELECT count(*) FROM test_runs WHERE note = 'end'") == 1


def test_sigterm_lets_running_jobs_finish(dsn, conn, producer, start_worker):
    for i in range(4):
        sleepy.enqueue(f"s{i}", 1.5)
    worker = start_worker(APP, "--concurrency", "4")
    wait_until(lambda: count(conn, "SELECT count(*) FROM test_runs WHERE note = 'start'") == 4)
    record.enqueue("after-stop")  # must not be claimed once stopping
    worker.signal(signal.SIGTERM)
    assert worker.wait() == 0
    statuses = dict(conn.execute("SELECT args->>'key', status::text FROM pgjobs.jobs").fetchall())
    assert statuses == {
        "s0": "succeeded",
        "s1": "succeeded",
        "s2": "succeeded",
        "s3": "succeeded",
        "after-stop": "queued",
    }
    assert count(conn, "SELECT count(*) FROM pgjobs.workers") == 0
    assert "worker.stopping" in worker.output()


def test_grace_period_expiry_returns_jobs_to_the_queue(dsn, conn, producer, start_worker):
    from tests.apps.basic import asleepy

    asleepy.enqueue("long-async", 60.0)
    sleepy.enqueue("long-thread", 60.0)
    worker = start_worker(APP, "--concurrency", "2", "--grace-period", "1")
    wait_until(lambda: count(conn, "SELECT count(*) FROM test_runs WHERE note = 'start'") == 2)
    worker.signal(signal.SIGTERM)
    assert worker.wait(timeout=20) == 0  # a thread ignoring cancellation does not block exit
    rows = conn.execute("SELECT status::text, attempts, worker_id FROM pgjobs.jobs").fetchall()
    assert rows == [("queued", 0, None), ("queued", 0, None)]  # the attempt is given back


def test_second_signal_stops_at_once_and_loses_nothing(dsn, conn, producer, start_worker):
    sleepy.enqueue("stubborn", 60.0)
    worker = start_worker(APP, "--grace-period", "60")
    wait_until(lambda: count(conn, "SELECT count(*) FROM test_runs WHERE note = 'start'") == 1)
    worker.signal(signal.SIGTERM)
    worker.wait_for_output("worker.stopping")
    worker.signal(signal.SIGTERM)
    assert worker.wait(timeout=15) == 1
    assert conn.execute("SELECT status::text, worker_id FROM pgjobs.jobs").fetchall() == [
        ("queued", None)
    ]
    assert "worker.stopping_now" in worker.output()


def run_cli(*args, env_dsn=None):
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO)}
    if env_dsn:
        env["PGJOBS_DSN"] = env_dsn
    return subprocess.run(
        [sys.executable, "-m", "pgjobs", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        cwd=REPO,
    )


def test_unmigrated_database_says_to_migrate(server_dsn):
    name = "pgjobs_unmigrated_test"
    with psycopg.connect(server_dsn, autocommit=True) as admin:
        admin.execute(f"DROP DATABASE IF EXISTS {name}")
        admin.execute(f"CREATE DATABASE {name}")
    try:
        result = run_cli("worker", APP, env_dsn=make_conninfo(server_dsn, dbname=name))
        assert result.returncode == 2
        assert "python -m pgjobs migrate" in result.stderr
        assert "Traceback" not in result.stderr
    finally:
        with psycopg.connect(server_dsn, autocommit=True) as admin:
            admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.mark.parametrize(
    ("dsn_value", "needle"),
    [
        ("postgresql://nobody@127.0.0.1:1/none", "cannot connect to PostgreSQL"),
        ("host='unterminated", "malformed DSN"),
        (None, "no database configured"),
    ],
)
def test_bad_dsn_is_one_clear_line(dsn_value, needle):
    result = run_cli("worker", APP, env_dsn=dsn_value)
    assert result.returncode == 2
    assert needle in result.stderr
    assert "PGJOBS_DSN" in result.stderr
    assert "Traceback" not in result.stderr


def test_bad_app_reference_is_explained(dsn):
    result = run_cli("worker", "tests.apps.nothing_here:app", env_dsn=dsn)
    assert result.returncode == 2
    assert "cannot import 'tests.apps.nothing_here'" in result.stderr
    result = run_cli("worker", "tests.apps.basic:record", env_dsn=dsn)
    assert "not a pgjobs.App" in result.stderr


def test_logs_are_structured_json(dsn, start_worker, conn, producer):
    record.enqueue("logged")
    worker = start_worker(APP, "--concurrency", "1")
    wait_until(lambda: count(conn, "SELECT count(*) FROM test_runs") == 1)
    worker.signal(signal.SIGINT)
    assert worker.wait() == 0
    events = [json.loads(line) for line in worker.output().splitlines() if line.startswith("{")]
    names = [e["event"] for e in events]
    assert names[0] == "worker.started"
    # No --queues: then the queues it serves, why, and how to serve others.
    assert names[1] == "worker.queues"
    assert "worker.stopped" in names
    started = next(e for e in events if e["event"] == "worker.started")
    assert started["queues"] == ["default"]
