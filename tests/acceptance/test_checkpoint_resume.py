"""A checkpointing job in a real worker process, SIGKILLed mid-run, resumes where it stopped."""

from __future__ import annotations

import signal

import pytest

from tests.apps.control import resumable
from tests.conftest import wait_until

APP = "tests.apps.control:app"
FAST = ("--heartbeat-interval", "0.5", "--stale-after", "2", "--rescue-interval", "0.5")


@pytest.fixture
def producer(dsn):
    app = resumable.app
    app.dsn = dsn
    yield app
    app.close()


def notes(conn) -> list[str]:
    return [r[0] for r in conn.execute("SELECT note FROM test_runs ORDER BY id")]


def test_a_checkpoint_resumes_after_sigkill(conn, producer, start_worker):
    steps = 60
    job_id = resumable.enqueue("r", steps)
    doomed = start_worker(APP, *FAST)
    wait_until(lambda: sum(n.startswith("step") for n in notes(conn)) >= 10)
    # Progress is written about once a second while it runs.
    wait_until(lambda: producer.get_job(job_id).progress is not None, timeout=10)
    doomed.signal(signal.SIGKILL)
    doomed.wait()
    saved = conn.execute("SELECT checkpoint FROM pgjobs.jobs WHERE id = %s", (job_id,)).fetchone()[
        0
    ]
    assert saved >= 10
    start_worker(APP, *FAST)
    assert producer.result(job_id, timeout=60) == steps
    seen = notes(conn)
    resumes = [n for n in seen if n.startswith("resume")]
    assert resumes == ["resume at 0", f"resume at {saved}"]
    done = [n for n in seen if n.startswith("step")]
    # Every step ran; only the one in flight at the kill (not yet saved) ran twice.
    assert sorted(set(done), key=lambda n: int(n.split()[1])) == [f"step {i}" for i in range(steps)]
    assert len(done) - len(set(done)) <= 1
    job = producer.get_job(job_id)
    assert job.attempts == 2
    assert job.checkpoint is None  # cleared on success
    assert job.progress is not None  # the last report written while it ran
    assert job.progress["total"] == steps
