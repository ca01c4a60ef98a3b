"""`in_memory(app)`: unit tests with no PostgreSQL. Jobs are kept in memory; `drain` runs them.

The runs go through the worker's own Executor, so a handler sees what it
sees in a worker: the same argument binding, middleware, prefix routing,
`pgjobs.current_job()` (checkpoints and progress kept in memory), task and
per-job timeouts, Snooze, and the task's retry policy. The differences are
the store's (pgjobs/_memory.py: nothing is transactional, `conn=` is not
used) and the scheduling: one job at a time, in claim order (priority, then
run_at, then id), in this process.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from pgjobs import _memory
from pgjobs._app import App
from pgjobs._job import Status
from pgjobs._memory import MemoryJob, MemoryQueue
from pgjobs.errors import ConfigurationError
from pgjobs.worker._executor import Executor
from pgjobs.worker._outcome import ClaimedJob, Outcome

__all__ = ["MemoryDrain", "drain_memory", "in_memory"]


@contextlib.contextmanager
def in_memory(app: App) -> Iterator[MemoryQueue]:
    """Keep the jobs `app` enqueues in memory, and run them with `drain(app)`, inside the block.

    Every enqueue of the App (sync or async, single or many, with `conn=` or
    not) records the job in memory and returns its id; `app.get_job(id)` and
    `app.result(id)` read it back. It is **not transactional**: a job
    enqueued with `conn=` is kept even if that transaction rolls back, and
    the connection is not used. While an App is in memory, an App that is not
    refuses to enqueue (ConfigurationError): a test would otherwise need a
    database after all.

    Yields:
        The store: `.jobs` is a dict of every job by id, each with its status,
        attempts, errors, result and checkpoint.

    Raises:
        ConfigurationError: the App is in memory already, or holds a task
            registered by another App.
    """
    foreign = sorted(name for name, task in app.tasks.items() if task.app is not app)
    if foreign:
        raise ConfigurationError(
            f"{app!r} holds tasks of another App ({', '.join(foreign)}): in memory, their "
            "enqueues would go to that App. Register them with this App, or put that App "
            "in memory instead"
        )
    if app._memory is not None:
        raise ConfigurationError(f"{app!r} is in memory already: in_memory() does not nest")
    store = MemoryQueue()
    app._memory = store
    _memory.active += 1
    try:
        yield store
    finally:
        _memory.active -= 1
        app._memory = None


@dataclass
class MemoryDrain:
    """What `drain` returns in memory: how many runs ended, as the Worker's `completed`."""

    completed: int = 0


class _Recorder:
    """Checkpoints and progress of the runs, written into the store's jobs."""

    def __init__(self, store: MemoryQueue, loop: asyncio.AbstractEventLoop) -> None:
        self.store = store
        self._loop = loop

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        return self._loop

    async def checkpoint(self, job_id: int, attempt: int, state_json: str) -> None:
        job = self.store.get(job_id)
        if job is not None and job.attempts == attempt:
            job.checkpoint = json.loads(state_json)

    async def parent_results(self, ids: list[int]) -> dict[int, Any]:
        found = (self.store.get(i) for i in ids)
        return {j.id: j.result for j in found if j is not None and j.status == "succeeded"}

    def progress(self, job_id: int, attempt: int, progress_json: str) -> None:
        job = self.store.get(job_id)
        if job is not None and job.attempts == attempt:
            job.progress = {**json.loads(progress_json), "at": _memory.now().isoformat()}


async def drain_memory(
    app: App,
    *,
    timeout: float = 60.0,  # noqa: ASYNC109 - drain_async's, whose contract it is
    queues: tuple[str, ...] | None = None,
    **config: Any,
) -> MemoryDrain:
    """Run the due jobs of an App in memory, one at a time, until none is due.

    As the database drain, jobs scheduled for later (a delay, a retry
    backoff, a snooze) are left queued, and `queues` defaults to every queue
    of the App's tasks plus "default". Other keyword arguments (WorkerConfig
    fields) are accepted and ignored: in memory there is no worker to tune.

    Raises:
        TimeoutError: jobs were still due after `timeout` seconds.
    """
    del config
    store = app._memory
    if store is None:
        raise ConfigurationError(f"{app!r} is not in memory: use drain() inside in_memory(app)")
    if queues is None:
        queues = tuple(sorted({t.defaults.queue for t in app.tasks.values()} | {"default"}))
    loop = asyncio.get_running_loop()
    executor = Executor(
        app.tasks, threads=1, middleware=app.middlewares, recorder=_Recorder(store, loop)
    )
    done = MemoryDrain()
    try:
        async with asyncio.timeout(timeout):
            while (job := store.due(queues)) is not None:
                _claim(job)
                outcome = await executor.run(_claimed(job))
                _apply(store, job, outcome)
                done.completed += 1
    finally:
        executor.shutdown()
    return done


def _claim(job: MemoryJob) -> None:
    job.status = Status.RUNNING
    job.attempts += 1
    job.started_at = _memory.now()


def _claimed(job: MemoryJob) -> ClaimedJob:
    return ClaimedJob(
        id=job.id,
        queue=job.queue,
        task=job.task,
        args=json.loads(json.dumps(job.args)),
        priority=job.priority,
        attempts=job.attempts,
        max_attempts=job.max_attempts,
        meta=json.loads(json.dumps(job.meta)),
        run_at=job.run_at,
        snoozes=job.snoozes,
        checkpoint=job.checkpoint,
        timeout=job.timeout,
    )


def _apply(store: MemoryQueue, job: MemoryJob, outcome: Outcome) -> None:
    """What complete.sql does with an outcome, done to the stored job."""
    at = _memory.now()
    if outcome.error is not None:
        job.errors.append({**outcome.error, "at": at.isoformat()})
    if outcome.status == "queued":  # a retry, or a snooze
        job.status = Status.QUEUED
        job.run_at = at + dt.timedelta(seconds=outcome.delay)
        if outcome.snooze:
            job.attempts -= 1
            job.snoozes += 1
        return
    job.status = Status(outcome.status)
    job.finished_at = at
    if outcome.status == "succeeded":
        job.result = None if outcome.result_json is None else json.loads(outcome.result_json)
        job.checkpoint = None  # a checkpoint is for the next attempt: a success needs none
    if not outcome.keep:  # keep_history=False: deleted as it finishes
        del store.jobs[job.id]
