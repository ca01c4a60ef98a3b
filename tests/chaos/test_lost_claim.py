"""A claim whose reply was lost: the job is marked running under a live worker that never saw it."""

from __future__ import annotations

import signal
import time

from tests.chaos.conftest import FAST, events, scalar
from tests.conftest import wait_until


def test_a_claim_lost_in_flight_is_given_back(cluster, workers, report):
    # The claim commits, then its connection drops before the reply arrives
    # (a network cut, pg_terminate_backend at the wrong moment). The row says
    # `running` under a worker that is alive and heartbeating, so the rescuer
    # will never touch it; the worker itself must notice. The lost reply is
    # made here by writing the claim's effect by hand.
    worker = workers("--concurrency", "2", *FAST)
    worker.wait_for_output("worker.started")
    worker_id = next(e["worker_id"] for e in events(worker) if e["event"] == "worker.started")
    with cluster.connect() as conn:
        job_id = scalar(
            conn,
            "INSERT INTO pgjobs.jobs (task, args, status, worker_id, attempts, started_at)"
            " VALUES ('chaos.record', '{\"key\": \"orphan\"}', 'running', %s, 1,"
            " now() - interval '1 minute') RETURNING id",
            worker_id,
        )
        began = time.monotonic()
        wait_until(
            lambda: (
                scalar(conn, "SELECT status::text FROM pgjobs.jobs WHERE id = %s", job_id)
                == "succeeded"
            ),
            timeout=15,
        )
        recovered = time.monotonic() - began
        attempts = scalar(conn, "SELECT attempts FROM pgjobs.jobs WHERE id = %s", job_id)
        runs = scalar(conn, "SELECT count(*) FROM test_runs WHERE job_key = 'orphan'")
    assert (attempts, runs) == (1, 1)  # the lost claim is not counted as an attempt
    released = [e for e in events(worker) if e["event"] == "worker.orphans_released"]
    assert released
    assert released[0]["job_ids"] == [job_id]
    worker.signal(signal.SIGTERM)
    assert worker.wait(30) == 0
    report(lost=0, recovered_after=round(recovered, 2))
