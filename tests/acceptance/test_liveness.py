"""Worker processes with default settings: a SIGKILLed worker is found by its lock, not its silence.

Also what a worker tells about the queues it serves, and what the leader
tells about those nobody serves.
"""

from __future__ import annotations

import json
import signal
import time
from typing import Any

import pytest

from pgjobs._names import LEADER_LOCK_CLASSID, LEADER_LOCK_OBJID
from tests.apps.basic import record, sleepy
from tests.conftest import wait_until

APP = "tests.apps.basic:app"

LEADER = f"""
    SELECT count(*) FROM pg_locks AS l
    JOIN pg_database AS d ON d.oid = l.database AND d.datname = current_database()
    WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1
      AND l.classid = {LEADER_LOCK_CLASSID} AND l.objid = {LEADER_LOCK_OBJID}
"""


def scalar(conn: Any, sql: str, *params: Any) -> Any:
    return conn.execute(sql, params).fetchone()[0]


def events(worker: Any) -> list[dict[str, Any]]:
    return [json.loads(line) for line in worker.output().splitlines() if line.startswith("{")]


@pytest.fixture
def producer(dsn):
    app = record.app
    app.dsn = dsn
    yield app
    app.close()


@pytest.mark.slow
def test_a_sigkilled_workers_jobs_are_back_long_before_its_heartbeat_is_stale(
    dsn, conn, producer, start_worker
):
    # The leader serves another queue, so that the jobs stay queued once rescued.
    leader = start_worker(APP, "--queues", "elsewhere")
    wait_until(lambda: scalar(conn, LEADER) == 1)
    for i in range(2):
        sleepy.enqueue(f"long{i}", 300.0)
    doomed = start_worker(APP, "--concurrency", "2")  # default settings: --stale-after 30
    wait_until(lambda: scalar(conn, "SELECT count(*) FROM test_runs WHERE note = 'start'") == 2)
    victim = scalar(conn, "SELECT DISTINCT worker_id FROM pgjobs.jobs")
    doomed.signal(signal.SIGKILL)
    doomed.wait()
    killed = time.time()
    wait_until(
        lambda: scalar(conn, "SELECT count(*) FROM pgjobs.jobs WHERE status = 'queued'") == 2,
        timeout=10,  # generous: the heartbeat alone would take 30 s and more
        interval=0.05,
    )
    rows = conn.execute("SELECT attempts, errors FROM pgjobs.jobs ORDER BY id").fetchall()
    for attempts, errors in rows:
        assert attempts == 1
        (lost,) = errors
        assert lost["type"] == "pgjobs.WorkerLost"
        # Found by its released lock, while its heartbeat was fresh.
        assert lost["message"] == (
            f"worker {victim} lost its connection to PostgreSQL while running this job"
            " (its liveness lock was released)"
        )
    print(f"rescued {time.time() - killed:.2f} s after the SIGKILL")
    assert scalar(conn, "SELECT count(*) FROM pgjobs.workers WHERE id = %s", victim) == 0
    leader.signal(signal.SIGTERM)
    assert leader.wait() == 0


@pytest.mark.slow
def test_a_worker_without_queues_says_which_it_serves_and_the_leader_names_unserved_ones(
    dsn, conn, producer, start_worker
):
    record.options(queue="nobody-serves-this").enqueue("stranded")
    worker = start_worker("tests.apps.welcome:app")  # no --queues: every queue of its tasks
    wait_until(lambda: '"leader.unserved_queue"' in worker.output(), timeout=30)
    worker.signal(signal.SIGTERM)
    assert worker.wait() == 0
    logged = events(worker)
    started = next(e for e in logged if e["event"] == "worker.started")
    assert started["queues"] == ["default", "emails"]
    # Before it starts, a line of its own says why these and how to serve others.
    (chosen,) = [e for e in logged if e["event"] == "worker.queues"]
    assert chosen["queues"] == ["default", "emails"]
    assert "no --queues" in chosen["chosen"]
    assert "--queues '*'" in chosen["hint"]
    unserved = [e for e in logged if e["event"] == "leader.unserved_queue"]
    assert [(e["queue"], e["due"]) for e in unserved] == [("nobody-serves-this", 1)]
    assert unserved[0]["oldest_due_seconds"] >= 0
