"""Cancelling a running job in a real worker process: async through asyncio, sync by its flag."""

from __future__ import annotations

import signal

import pytest

from tests.apps.control import acancellable, cancellable
from tests.conftest import wait_until

APP = "tests.apps.control:app"


@pytest.fixture
def producer(dsn):
    app = cancellable.app
    app.dsn = dsn
    yield app
    app.close()


def notes(conn, key: str) -> list[str]:
    return [
        r[0]
        for r in conn.execute("SELECT note FROM test_runs WHERE job_key = %s ORDER BY id", (key,))
    ]


def status(conn, job_id: int) -> tuple[str, str | None]:
    return conn.execute(
        "SELECT status::text, cancelled_by FROM pgjobs.jobs WHERE id = %s", (job_id,)
    ).fetchone()


@pytest.mark.parametrize(
    ("task", "seen", "args"),
    [
        (acancellable, "cancelled", ()),
        (cancellable, "saw cancel", ()),
        # Without a listener the heartbeat's reply carries the request.
        (cancellable, "saw cancel", ("--no-listen", "--heartbeat-interval", "0.5")),
    ],
    ids=["async", "sync", "sync-by-heartbeat"],
)
def test_a_running_job_is_cancelled_in_the_worker_process(
    conn, producer, start_worker, task, seen, args
):
    job_id = task.enqueue("victim")
    worker = start_worker(APP, "--poll-interval", "0.1", *args)
    wait_until(lambda: notes(conn, "victim") == ["start"])
    conn.execute("SELECT pgjobs.cancel(%s, 'acceptance')", (job_id,))
    wait_until(lambda: status(conn, job_id)[0] == "cancelled", timeout=20)
    assert status(conn, job_id) == ("cancelled", "acceptance")
    assert notes(conn, "victim") == ["start", seen]
    # The worker lives on and runs the next job.
    follow = task.enqueue("next")
    wait_until(lambda: notes(conn, "next") == ["start"])
    producer.cancel(follow, by="producer")
    wait_until(lambda: status(conn, follow) == ("cancelled", "producer"), timeout=20)
    worker.signal(signal.SIGTERM)
    assert worker.wait() == 0
    assert '"event": "job.cancelled"' in worker.output()
