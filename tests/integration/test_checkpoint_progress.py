"""Checkpoints and progress on a real PostgreSQL, through an in-process worker."""

from __future__ import annotations

import time
from typing import Any

import pytest

import pgjobs
from pgjobs.testing import drain


@pytest.fixture
def app(dsn):
    application = pgjobs.App(dsn)
    yield application
    application.close()


def test_a_retry_reads_the_checkpoint_and_success_clears_it(app, conn):
    seen: list[Any] = []

    @app.task(name="flaky", max_attempts=2, retry=pgjobs.Constant(0))
    async def flaky() -> str:
        job = pgjobs.current_job()
        seen.append(job.checkpoint_state)
        if job.attempt == 1:
            await job.checkpoint_async({"rows": 500})
            raise RuntimeError("connection reset")
        return "done"

    job_id = flaky.enqueue()
    drain(app)
    assert seen == [None, {"rows": 500}]
    assert conn.execute(
        "SELECT status::text, attempts, checkpoint FROM pgjobs.jobs WHERE id = %s", (job_id,)
    ).fetchone() == ("succeeded", 2, None)


def test_a_failed_job_keeps_its_checkpoint_for_a_manual_retry(app, conn):
    @app.task(name="stops", max_attempts=1)
    def stops() -> None:
        job = pgjobs.current_job()
        job.checkpoint((job.checkpoint_state or 0) + 1)
        raise RuntimeError("stop")

    job_id = stops.enqueue()
    drain(app)
    app.retry(job_id)
    drain(app)
    assert conn.execute(
        "SELECT status::text, checkpoint FROM pgjobs.jobs WHERE id = %s", (job_id,)
    ).fetchone() == ("failed", 2)


def test_progress_is_written_while_the_job_runs(app, conn):
    @app.task(name="long")
    def long() -> None:
        job = pgjobs.current_job()
        for i in range(30):
            job.progress(i + 1, total=30, message=f"chunk {i + 1}")
            time.sleep(0.1)

    job_id = long.enqueue()
    drain(app)
    progress = app.get_job(job_id).progress
    assert progress is not None
    assert progress["total"] == 30
    assert progress["message"].startswith("chunk ")
    assert "at" in progress
    assert progress["done"] >= 5  # written while it ran, not only at its start
