"""Every job event the executor logs carries the worker's id, as the README's log fields say."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Iterator
from typing import Any

import pytest
import structlog
import structlog.testing

import pgjobs
from pgjobs.worker._executor import Executor
from pgjobs.worker._outcome import ClaimedJob

app = pgjobs.App(dsn="postgresql://nowhere.invalid/none")


@app.task(name="fine")
def fine() -> None:
    """Succeeds."""


@app.task(name="flaky", max_attempts=2)
def flaky() -> None:
    """Fails; retried once, then failed."""
    raise RuntimeError("boom")


@app.task(name="typed")
def typed(n: int) -> None:
    """Takes one argument."""


@pytest.fixture
def events() -> Iterator[list[dict[str, Any]]]:
    """structlog events, debug included, with the previous configuration restored after."""
    # Restoring a configuration also marks structlog as configured, which
    # would change where pgjobs logs for the rest of the session (it prints
    # to stderr only while nobody has configured structlog).
    was_configured = structlog.is_configured()
    before = structlog.get_config()
    capture = structlog.testing.LogCapture()
    structlog.configure(
        processors=[capture],
        wrapper_class=structlog.make_filtering_bound_logger(logging.DEBUG),
        cache_logger_on_first_use=False,
    )
    try:
        yield capture.entries
    finally:
        if was_configured:
            structlog.configure(**before)
        else:
            structlog.reset_defaults()


def claimed(task: str, attempt: int = 1, args: dict[str, Any] | None = None) -> ClaimedJob:
    return ClaimedJob(
        id=100 + attempt,
        queue="default",
        task=task,
        args=args or {},
        priority=2,
        attempts=attempt,
        max_attempts=2,
        meta={},
        run_at=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
    )


def test_job_events_carry_the_worker_id(events):
    executor = Executor(app.tasks, threads=1, worker_id=7)
    jobs = [
        claimed("fine"),
        claimed("flaky", attempt=1),
        claimed("flaky", attempt=2),
        claimed("missing"),
        claimed("typed", args={"wrong": 1}),
    ]

    async def run_all() -> list[str]:
        return [(await executor.run(job)).status for job in jobs]

    try:
        statuses = asyncio.run(run_all())
    finally:
        executor.shutdown()
    assert statuses == ["succeeded", "queued", "failed", "failed", "failed"]
    logged = [(e["event"], e.get("task")) for e in events]
    assert logged == [
        ("job.started", "fine"),
        ("job.succeeded", "fine"),
        ("job.started", "flaky"),
        ("job.retrying", "flaky"),
        ("job.started", "flaky"),
        ("job.failed", "flaky"),
        ("job.failed", "missing"),
        ("job.failed", "typed"),
    ]
    for event in events:
        assert event["worker_id"] == 7, event
        assert {"job_id", "task", "queue", "attempt"} <= set(event), event
