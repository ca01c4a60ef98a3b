"""Cancelling a running job inside the worker, through the real executor, without a database."""

from __future__ import annotations

import asyncio
import threading

import pytest

import pgjobs
from pgjobs.worker._db import Outage
from pgjobs.worker._executor import Executor
from pgjobs.worker._listener import Listener
from pgjobs.worker._outcome import Outcome
from tests.unit.test_middleware import claimed


@pytest.fixture
def app() -> pgjobs.App:
    return pgjobs.App(dsn="postgresql://nowhere.invalid/none")


def test_an_async_handler_cancelled_through_asyncio_ends_cancelled(app):
    seen: list[str] = []

    started = threading.Event()

    @app.task(name="sleepy")
    async def sleepy() -> None:
        started.set()
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            seen.append("cancelled inside the handler")
            raise

    executor = Executor(app.tasks, threads=1)

    async def main() -> Outcome:
        running = asyncio.create_task(executor.run(claimed("sleepy", 5)))
        await asyncio.to_thread(started.wait, 10)
        assert executor.is_async(5) is True
        assert executor.cancel(5) is True
        running.cancel()  # what the worker's session does for an async handler
        outcome = await running
        assert running.cancelling() == 0  # the cancel was taken back, not left pending
        return outcome

    try:
        outcome = asyncio.run(main())
    finally:
        executor.shutdown()
    assert outcome.status == "cancelled"
    assert seen == ["cancelled inside the handler"]
    assert executor.contexts == {}


def test_a_stopping_worker_still_gets_the_cancelled_error_to_release_the_job(app):
    started = threading.Event()

    @app.task(name="sleepy")
    async def sleepy() -> None:
        started.set()
        await asyncio.sleep(30)

    executor = Executor(app.tasks, threads=1)

    async def main() -> None:
        running = asyncio.create_task(executor.run(claimed("sleepy", 5)))
        await asyncio.to_thread(started.wait, 10)
        running.cancel()  # a stop, with no cancel of the job
        with pytest.raises(asyncio.CancelledError):
            await running

    try:
        asyncio.run(main())
    finally:
        executor.shutdown()


def test_a_sync_handler_that_fails_after_the_cancel_flag_ends_cancelled_not_failed(app):
    started = threading.Event()

    @app.task(name="stubborn")
    def stubborn() -> None:
        job = pgjobs.current_job()
        started.set()
        while not job.cancelled:
            pass
        raise RuntimeError("cleanup went wrong")

    executor = Executor(app.tasks, threads=1)

    async def main() -> Outcome:
        running = asyncio.create_task(executor.run(claimed("stubborn", 9)))
        await asyncio.to_thread(started.wait, 10)
        assert executor.cancel(9) is True
        return await running

    try:
        outcome = asyncio.run(main())
    finally:
        executor.shutdown()
    assert outcome.status == "cancelled"


def test_a_handler_raising_the_cancelled_error_itself_without_a_cancel_fails_as_usual(app):
    @app.task(name="liar")
    def liar() -> None:
        raise pgjobs.errors.JobCancelledError(1)

    executor = Executor(app.tasks, threads=1)
    try:
        outcome = asyncio.run(executor.run(claimed("liar", 1)))
    finally:
        executor.shutdown()
    assert outcome.status == "queued"  # a retry, as for any error


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        ("cancel 7 42", [42]),
        ("cancel 8 42", []),  # another worker's job
        ("cancel 7", []),
        ("cancel seven 42", []),
        ("stop 7 42", []),
        ("", []),
    ],
)
def test_the_listener_acts_only_on_cancels_addressed_to_its_worker(payload, expected):
    asked: list[int] = []
    listener = Listener(
        "postgresql://nowhere.invalid/none",
        ("default",),
        asyncio.Event(),
        Outage(),
        worker_id=7,
        on_cancel=asked.append,
    )
    listener._control(payload)
    assert asked == expected
