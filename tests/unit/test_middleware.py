"""Middleware and the job context, through the real executor without a database."""

from __future__ import annotations

import asyncio
import datetime as dt
import threading
import time
from typing import Any

import pytest

import pgjobs
from pgjobs.errors import ConfigurationError, JobCancelledError, JobContextError
from pgjobs.worker._executor import Executor
from pgjobs.worker._outcome import ClaimedJob, Outcome


def claimed(task: str, job_id: int = 1, meta: dict[str, Any] | None = None) -> ClaimedJob:
    return ClaimedJob(
        id=job_id,
        queue="default",
        task=task,
        args={},
        priority=2,
        attempts=1,
        max_attempts=3,
        meta=meta or {},
        run_at=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
    )


def run(executor: Executor, *jobs: ClaimedJob) -> list[Outcome]:
    async def main() -> list[Outcome]:
        return [await executor.run(job) for job in jobs]

    try:
        return asyncio.run(main())
    finally:
        executor.shutdown()


@pytest.fixture
def app() -> pgjobs.App:
    return pgjobs.App(dsn="postgresql://nowhere.invalid/none")


def recording(trail: list[str], label: str) -> pgjobs.Middleware:
    async def middleware(job: pgjobs.JobContext, call_next: pgjobs.CallNext) -> Any:
        trail.append(f"{label} before {job.task}")
        result = await call_next()
        trail.append(f"{label} after {result}")
        return result

    return middleware


@pytest.mark.parametrize("kind", ["sync", "async"])
def test_middleware_wraps_in_declaration_order_the_first_outermost(app, kind):
    trail: list[str] = []
    app.middleware(recording(trail, "first"))
    app.middleware(recording(trail, "second"))
    if kind == "sync":

        @app.task(name="handler")
        def handler() -> str:
            trail.append(f"handler in {threading.current_thread().name[:10]}")
            return "done"
    else:

        @app.task(name="handler")
        async def handler() -> str:
            trail.append("handler in the loop")
            return "done"

    (outcome,) = run(Executor(app.tasks, threads=1, middleware=app.middlewares), claimed("handler"))
    assert (outcome.status, outcome.result_json) == ("succeeded", '"done"')
    where = "pgjobs-job" if kind == "sync" else "the loop"
    assert trail == [
        "first before handler",
        "second before handler",
        f"handler in {where}",
        "second after done",
        "first after done",
    ]


def test_a_middleware_that_does_not_call_next_is_the_result(app):
    ran: list[str] = []

    @app.middleware
    async def cached(job: pgjobs.JobContext, call_next: pgjobs.CallNext) -> Any:
        return {"cached": job.id}

    @app.task(name="handler")
    def handler() -> str:
        ran.append("handler")
        return "fresh"

    (outcome,) = run(Executor(app.tasks, threads=1, middleware=app.middlewares), claimed("handler"))
    assert (outcome.status, outcome.result_json, ran) == ("succeeded", '{"cached":1}', [])


def test_a_middleware_that_raises_fails_the_attempt_like_the_handler(app):
    ran: list[str] = []

    @app.middleware
    async def breaker(job: pgjobs.JobContext, call_next: pgjobs.CallNext) -> Any:
        raise RuntimeError("circuit open")

    @app.task(name="handler")
    async def handler() -> None:
        ran.append("handler")

    (outcome,) = run(Executor(app.tasks, threads=1, middleware=app.middlewares), claimed("handler"))
    assert outcome.status == "queued"  # retried by the task's policy
    assert outcome.error is not None
    assert (outcome.error["type"], outcome.error["message"]) == ("RuntimeError", "circuit open")
    assert ran == []


def test_a_middleware_can_run_the_handler_again(app):
    calls: list[int] = []

    @app.middleware
    async def retry_once(job: pgjobs.JobContext, call_next: pgjobs.CallNext) -> Any:
        try:
            return await call_next()
        except ValueError:
            return await call_next()

    @app.task(name="handler")
    def handler() -> int:
        calls.append(1)
        if len(calls) == 1:
            raise ValueError("first try")
        return len(calls)

    (outcome,) = run(Executor(app.tasks, threads=1, middleware=app.middlewares), claimed("handler"))
    assert (outcome.status, outcome.result_json) == ("succeeded", "2")


def test_a_middleware_that_exits_fails_only_its_job(app):
    @app.middleware
    async def exits(job: pgjobs.JobContext, call_next: pgjobs.CallNext) -> Any:
        raise SystemExit(2)

    @app.task(name="handler")
    def handler() -> None: ...

    (outcome,) = run(Executor(app.tasks, threads=1, middleware=app.middlewares), claimed("handler"))
    assert outcome.error is not None
    assert outcome.error["type"] == "pgjobs.errors.HandlerExitError"


def test_the_timeout_bounds_the_middleware_too(app):
    @app.middleware
    async def slow(job: pgjobs.JobContext, call_next: pgjobs.CallNext) -> Any:
        await asyncio.sleep(10)

    @app.task(name="handler", timeout=0.05)
    async def handler() -> None: ...

    (outcome,) = run(Executor(app.tasks, threads=1, middleware=app.middlewares), claimed("handler"))
    assert outcome.error is not None
    assert "timeout of 0.05s" in outcome.error["message"]


def test_only_async_middleware_is_accepted(app):
    def sync_middleware(job: pgjobs.JobContext, call_next: pgjobs.CallNext) -> Any:
        return None

    with pytest.raises(ConfigurationError, match="not an async function"):
        app.middleware(sync_middleware)  # type: ignore[arg-type]

    class Breaker:
        async def __call__(self, job: pgjobs.JobContext, call_next: pgjobs.CallNext) -> Any:
            return await call_next()

    breaker = Breaker()
    assert app.middleware(breaker) is breaker
    assert app.middlewares == [breaker]


@pytest.mark.parametrize("kind", ["sync", "async"])
def test_the_context_is_the_job_being_run(app, kind):
    seen: list[tuple[Any, ...]] = []

    def look() -> str:
        job = pgjobs.current_job()
        seen.append((job.id, job.attempt, job.task, job.queue, job.meta, job.worker_id))
        return job.task

    if kind == "sync":

        @app.task(name="reports.*")
        def handler() -> str:
            return look()
    else:

        @app.task(name="reports.*")
        async def handler() -> str:
            return look()

    outcomes = run(
        Executor(app.tasks, threads=2, worker_id=9),
        claimed("reports.daily", 5, {"trace": "t1"}),
        claimed("reports.weekly", 6),
    )
    assert [o.result_json for o in outcomes] == ['"reports.daily"', '"reports.weekly"']
    assert seen == [
        (5, 1, "reports.daily", "default", {"trace": "t1"}, 9),
        (6, 1, "reports.weekly", "default", {}, 9),
    ]
    with pytest.raises(JobContextError, match="only available inside a job handler"):
        pgjobs.current_job()  # the executor left no context behind


def test_a_cancel_flag_reaches_a_running_sync_handler(app):
    started = threading.Event()

    @app.task(name="loop", max_attempts=1)
    def loop() -> None:
        job = pgjobs.current_job()
        started.set()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            job.raise_if_cancelled()
            time.sleep(0.01)

    executor = Executor(app.tasks, threads=1)

    async def main() -> Outcome:
        running = asyncio.create_task(executor.run(claimed("loop", 42)))
        await asyncio.to_thread(started.wait, 10)
        assert executor.is_async(42) is False
        assert executor.cancel(42) is True
        assert executor.cancel(42) is False  # asked already
        assert executor.cancel(43) is False  # not running here
        return await running

    try:
        outcome = asyncio.run(main())
    finally:
        executor.shutdown()
    # raise_if_cancelled() stopped it: the run ends cancelled, not failed.
    assert outcome.status == "cancelled"
    assert outcome.error is None
    assert executor.contexts == {}


def test_a_fresh_context_is_not_cancelled():
    job = pgjobs.JobContext(claimed("t", 3), worker_id=None)
    assert job.cancelled is False
    job.raise_if_cancelled()
    job._mark_cancelled()
    assert job.cancelled is True
    with pytest.raises(JobCancelledError):
        job.raise_if_cancelled()
    assert "cancelled" in repr(job)
