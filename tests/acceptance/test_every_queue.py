"""`worker --queues '*'`: a worker process that serves every queue, new ones too."""

from __future__ import annotations

import json
import signal
from typing import Any

import pytest

from tests.apps.basic import record
from tests.conftest import wait_until

APP = "tests.apps.basic:app"


def runs(conn: Any) -> list[str]:
    return sorted(row[0] for row in conn.execute("SELECT job_key FROM test_runs").fetchall())


def events(worker: Any) -> list[dict[str, Any]]:
    return [json.loads(line) for line in worker.output().splitlines() if line.startswith("{")]


@pytest.fixture
def producer(dsn):
    app = record.app
    app.dsn = dsn
    yield app
    app.close()


@pytest.mark.slow
def test_a_worker_of_every_queue_runs_the_jobs_of_queues_that_appear_later(
    dsn, conn, producer, start_worker
):
    for queue in ("alpha", "beta"):
        for i in range(3):
            record.options(queue=queue).enqueue(f"{queue}{i}")
    worker = start_worker(APP, "--queues", "*")
    wait_until(lambda: len(runs(conn)) == 6)
    # Queues that no worker has ever served, and one it served already.
    record.options(queue="gamma").enqueue("gamma0")
    record.options(queue="delta").enqueue("delta0")
    record.options(queue="alpha").enqueue("alpha3")
    wait_until(lambda: len(runs(conn)) == 9)
    assert runs(conn) == sorted(
        [f"alpha{i}" for i in range(4)] + [f"beta{i}" for i in range(3)] + ["delta0", "gamma0"]
    )
    # Its row says '*', and names the queues found, so that enqueuers wake it.
    listed = ["*", "alpha", "beta", "delta", "gamma"]
    wait_until(lambda: conn.execute("SELECT queues FROM pgjobs.workers").fetchone()[0] == listed)
    # Every job ends: a handler records its run before the worker writes its
    # outcome, in a batch, so the last ones may still be running for a moment.
    wait_until(lambda: conn.execute("SELECT count(*) FROM pgjobs.jobs_live").fetchone()[0] == 0)
    worker.signal(signal.SIGTERM)
    assert worker.wait() == 0
    logged = events(worker)
    started = next(e for e in logged if e["event"] == "worker.started")
    assert started["queues"] == ["*"]
    found = [q for e in logged if e["event"] == "worker.queues_found" for q in e["added"]]
    assert {"alpha", "beta", "gamma", "delta"} <= set(found)
