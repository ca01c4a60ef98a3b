"""The job context, middleware and prefix routing, on real jobs run by an in-process worker."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import pytest

import pgjobs
from pgjobs.errors import JobContextError
from pgjobs.testing import drain


@pytest.fixture
def app(dsn):
    application = pgjobs.App(dsn)
    yield application
    application.close()


def rows(conn, sql, *params):
    return conn.execute(sql, params).fetchall()


def seen_by(job: pgjobs.JobContext) -> dict[str, Any]:
    return {
        "id": job.id,
        "attempt": job.attempt,
        "task": job.task,
        "queue": job.queue,
        "meta": job.meta,
        "worker_id": job.worker_id,
        "cancelled": job.cancelled,
    }


def test_current_job_in_sync_and_async_handlers(app, conn):
    seen: dict[str, dict[str, Any]] = {}

    @app.task(name="in_thread", queue="threads")
    def in_thread() -> int:
        seen["sync"] = seen_by(pgjobs.current_job())
        seen["sync"]["thread"] = threading.current_thread().name
        return pgjobs.current_job().id

    @app.task(name="on_loop")
    async def on_loop() -> int:
        await asyncio.sleep(0)
        seen["async"] = seen_by(pgjobs.current_job())
        return pgjobs.current_job().id

    sync_id = in_thread.options(meta={"trace": "abc"}).enqueue()
    async_id = on_loop.enqueue()
    worker = drain(app, concurrency=4)
    assert worker.worker_id is not None
    common = {"attempt": 1, "worker_id": worker.worker_id, "cancelled": False}
    assert seen["sync"].pop("thread").startswith("pgjobs-job")
    assert seen["sync"] == {
        **common,
        "id": sync_id,
        "task": "in_thread",
        "queue": "threads",
        "meta": {"trace": "abc"},
    }
    assert seen["async"] == {
        **common,
        "id": async_id,
        "task": "on_loop",
        "queue": "default",
        "meta": {},
    }
    # Each handler returned its own job's id.
    assert dict(rows(conn, "SELECT id, result FROM pgjobs.jobs")) == {
        sync_id: sync_id,
        async_id: async_id,
    }


def test_the_attempt_counts_the_retries(app, conn):
    attempts: list[int] = []

    @app.task(name="flaky", retry=pgjobs.Constant(seconds=0.1, jitter=0))
    def flaky() -> None:
        attempts.append(pgjobs.current_job().attempt)
        if len(attempts) < 3:
            raise RuntimeError("not yet")

    flaky.enqueue()
    deadline = time.monotonic() + 20
    while rows(conn, "SELECT status FROM pgjobs.jobs") != [("succeeded",)]:
        assert time.monotonic() < deadline, attempts
        drain(app)
        time.sleep(0.1)
    assert attempts == [1, 2, 3]


def test_current_job_outside_a_handler_says_where_it_works(app):
    @app.task(name="direct")
    def direct() -> int:
        return pgjobs.current_job().id

    with pytest.raises(JobContextError, match="only available inside a job handler"):
        pgjobs.current_job()
    with pytest.raises(JobContextError, match="calling a task function directly"):
        direct()  # runs here and now, with no job


def test_middleware_wraps_short_circuits_and_fails_real_jobs(app, conn):
    trail: list[str] = []

    @app.middleware
    async def outer(job: pgjobs.JobContext, call_next: pgjobs.CallNext) -> Any:
        trail.append(f"outer {job.id}")
        try:
            return await call_next()
        finally:
            trail.append(f"outer done {job.id}")

    @app.middleware
    async def gate(job: pgjobs.JobContext, call_next: pgjobs.CallNext) -> Any:
        # current_job() is the same context in middleware.
        assert pgjobs.current_job() is job
        if job.meta.get("skip"):
            return "skipped"
        if job.meta.get("refuse"):
            raise PermissionError(f"job {job.id} refused by the gate")
        trail.append(f"gate {job.id}")
        return await call_next()

    @app.task(name="work", max_attempts=1)
    def work(n: int) -> int:
        trail.append(f"handler {pgjobs.current_job().id}")
        return n * 2

    ran = work.enqueue(21)
    skipped = work.options(meta={"skip": True}).enqueue(1)
    refused = work.options(meta={"refuse": True}).enqueue(2)
    drain(app, concurrency=1)

    outcome = {
        job_id: (status, result, error)
        for job_id, status, result, error in rows(
            conn, "SELECT id, status, result, errors->0->>'message' FROM pgjobs.jobs"
        )
    }
    assert outcome == {
        ran: ("succeeded", 42, None),
        skipped: ("succeeded", "skipped", None),
        refused: ("failed", None, f"job {refused} refused by the gate"),
    }
    assert trail == [
        f"outer {ran}",
        f"gate {ran}",
        f"handler {ran}",
        f"outer done {ran}",
        f"outer {skipped}",
        f"outer done {skipped}",
        f"outer {refused}",
        f"outer done {refused}",
    ]


def test_a_prefix_handler_serves_jobs_enqueued_by_name_in_sql(app, conn):
    served: list[tuple[str, str, str]] = []

    @app.task(name="reports.*", queue="reports")
    def any_report(day: str) -> str:
        served.append(("reports.*", pgjobs.current_job().task, day))
        return f"report {pgjobs.current_job().task} for {day}"

    @app.task(name="reports.pdf.*", queue="reports")
    async def pdf_report(day: str) -> str:
        served.append(("reports.pdf.*", pgjobs.current_job().task, day))
        return "pdf"

    @app.task(name="reports.special", queue="reports")
    def special(day: str) -> str:
        served.append(("reports.special", pgjobs.current_job().task, day))
        return "special"

    for name in ("reports.daily", "reports.pdf.weekly", "reports.special", "invoices.monthly"):
        conn.execute(
            "SELECT pgjobs.enqueue(%s, '{\"day\": \"mon\"}'::jsonb, queue => 'reports')", (name,)
        )
    # From Python too: by its full name, with the pattern's defaults (its queue).
    app.enqueue("reports.yearly", {"day": "tue"})
    drain(app)  # the worker serves the patterns' queue, "reports"

    assert sorted(served) == [
        ("reports.*", "reports.daily", "mon"),
        ("reports.*", "reports.yearly", "tue"),
        ("reports.pdf.*", "reports.pdf.weekly", "mon"),
        ("reports.special", "reports.special", "mon"),
    ]
    outcome = {
        task: (status, result)
        for task, status, result in rows(conn, "SELECT task, status, result FROM pgjobs.jobs")
    }
    assert outcome == {
        "reports.daily": ("succeeded", "report reports.daily for mon"),
        "reports.yearly": ("succeeded", "report reports.yearly for tue"),
        "reports.pdf.weekly": ("succeeded", "pdf"),
        "reports.special": ("succeeded", "special"),
        "invoices.monthly": ("failed", None),
    }
    ((message,),) = rows(
        conn, "SELECT errors->0->>'message' FROM pgjobs.jobs WHERE task = 'invoices.monthly'"
    )
    assert "unknown task 'invoices.monthly'" in message
    assert "reports.*" in message  # the registrations it lists include the patterns
