"""Checkpoints and progress in the job context, through the real executor, without a database."""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any

import pytest

import pgjobs
from pgjobs.errors import ArgumentsError, ConfigurationError, JobContextError
from pgjobs.worker._executor import Executor
from tests.unit.test_middleware import claimed, run


class FakeRecorder:
    """Records what a context writes, on the loop the executor runs on."""

    def __init__(self) -> None:
        self.checkpoints: list[tuple[int, int, str]] = []
        self.reports: list[tuple[int, int, str]] = []
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        assert self._loop is not None
        return self._loop

    async def checkpoint(self, job_id: int, attempt: int, state_json: str) -> None:
        assert asyncio.get_running_loop() is self._loop  # written on the worker's loop
        self.checkpoints.append((job_id, attempt, state_json))

    def progress(self, job_id: int, attempt: int, progress_json: str) -> None:
        self.reports.append((job_id, attempt, progress_json))


def run_recorded(app: pgjobs.App, *jobs: Any) -> tuple[list[Any], FakeRecorder]:
    recorder = FakeRecorder()
    executor = Executor(app.tasks, threads=2, recorder=recorder)

    async def main() -> list[Any]:
        recorder._loop = asyncio.get_running_loop()
        return [await executor.run(job) for job in jobs]

    try:
        return asyncio.run(main()), recorder
    finally:
        executor.shutdown()


@pytest.fixture
def app() -> pgjobs.App:
    return pgjobs.App(dsn="postgresql://nowhere.invalid/none")


def test_a_sync_handler_checkpoints_through_the_loop_and_reads_the_earlier_state(app):
    seen: list[Any] = []

    @app.task(name="steps")
    def steps() -> None:
        job = pgjobs.current_job()
        seen.append(job.checkpoint_state)
        job.checkpoint({"next": 3})
        seen.append(job.checkpoint_state)
        job.progress(3, total=10, message="step 3 of 10")

    resumed = dataclasses.replace(claimed("steps", 4), checkpoint={"next": 2})
    (outcome,), recorder = run_recorded(app, resumed)
    assert outcome.status == "succeeded"
    assert seen == [{"next": 2}, {"next": 3}]
    assert recorder.checkpoints == [(4, 1, '{"next":3}')]
    assert recorder.reports == [(4, 1, '{"done":3,"total":10,"message":"step 3 of 10"}')]


def test_an_async_handler_awaits_checkpoint_async_and_may_not_block(app):
    @app.task(name="asteps")
    async def asteps() -> str:
        job = pgjobs.current_job()
        await job.checkpoint_async([1, 2])
        try:
            job.checkpoint([3])
        except JobContextError as exc:
            return str(exc)
        return "no error"

    (outcome,), recorder = run_recorded(app, claimed("asteps", 5))
    assert recorder.checkpoints == [(5, 1, "[1,2]")]
    assert "use `await pgjobs.current_job().checkpoint_async(state)`" in outcome.result_json


def test_a_state_that_is_not_json_is_an_arguments_error_in_the_handler(app):
    caught: list[str] = []

    @app.task(name="bad", max_attempts=1)
    def bad() -> None:
        try:
            pgjobs.current_job().checkpoint({1, 2})
        except ArgumentsError as exc:
            caught.append(str(exc))
            raise

    (outcome,), recorder = run_recorded(app, claimed("bad"))
    assert recorder.checkpoints == []
    assert caught
    assert "the checkpoint state" in caught[0]
    assert outcome.error is not None
    assert outcome.error["type"] == "pgjobs.errors.ArgumentsError"


@pytest.mark.parametrize(("done", "total"), [(float("nan"), None), ("3", None), (1, float("inf"))])
def test_progress_refuses_what_is_not_a_finite_number(app, done, total):
    @app.task(name="p", max_attempts=1)
    def p() -> None:
        pgjobs.current_job().progress(done, total)

    (outcome,), recorder = run_recorded(app, claimed("p"))
    assert recorder.reports == []
    assert outcome.error is not None
    assert outcome.error["type"] == ConfigurationError.__module__ + ".ConfigurationError"


def test_without_a_recorder_a_checkpoint_is_kept_in_memory(app):
    @app.task(name="mem")
    def mem() -> Any:
        job = pgjobs.current_job()
        job.checkpoint(7)
        job.progress(1)
        return job.checkpoint_state

    (outcome,) = run(Executor(app.tasks, threads=1), claimed("mem"))
    assert outcome.result_json == "7"
