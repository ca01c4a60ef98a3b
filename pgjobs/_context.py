"""The running job's context (`pgjobs.current_job()`), and the middleware around each run.

The worker's executor makes one JobContext per run and sets it in a
contextvar around the handler: an async handler runs in the job's own
asyncio task, and a sync one in a thread that runs in a copy of that
context, so both see their own job and nothing else. A middleware gets the
same object as its first argument.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
import math
from collections.abc import Awaitable, Callable, Sequence
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any, Protocol, TypeAlias

from pgjobs._options import DEPENDS_ON_KEY
from pgjobs._serde import dump_json
from pgjobs.errors import ConfigurationError, JobCancelledError, JobContextError


class Snooze(Exception):  # noqa: N818 - the name users raise, by contract (issue 15)
    """Raise in a handler to run the job again later without counting the attempt.

    `raise pgjobs.Snooze(30)` (seconds, or a `datetime.timedelta`) puts the
    job back in its queue to run again in 30 s; its `attempts` is not
    increased and its `snoozes` is. A task snoozes at most `max_snoozes`
    times (`@app.task(max_snoozes=100)`); the attempt that would snooze once
    more fails instead, as does one whose delay is negative or not a number.
    """

    def __init__(self, delay: float | dt.timedelta) -> None:
        self.delay = delay
        super().__init__(f"snooze for {delay}")

    def seconds(self) -> float:
        """The delay in seconds.

        Raises:
            ValueError: the delay is negative, NaN or infinite, or not a number.
        """
        delay = self.delay
        value = delay.total_seconds() if isinstance(delay, dt.timedelta) else delay
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError(
                f"pgjobs.Snooze takes seconds or a timedelta, got {type(value).__name__} {value!r}"
            )
        if not math.isfinite(value) or value < 0:
            raise ValueError(
                f"pgjobs.Snooze needs a delay of 0 seconds or more, got {value!r}; "
                "the attempt fails instead of snoozing"
            )
        return float(value)


if TYPE_CHECKING:
    import psycopg


class _Claimed(Protocol):
    """The fields of a claimed job that a context reads (the worker's ClaimedJob)."""

    @property
    def id(self) -> int: ...
    @property
    def attempts(self) -> int: ...
    @property
    def task(self) -> str: ...
    @property
    def queue(self) -> str: ...
    @property
    def meta(self) -> dict[str, Any]: ...
    @property
    def checkpoint(self) -> Any: ...


class Recorder(Protocol):
    """Where a context writes checkpoints and progress (pgjobs/worker/_progress.py)."""

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        """The worker's event loop, on which `checkpoint` runs."""

    async def checkpoint(self, job_id: int, attempt: int, state_json: str) -> None:
        """Write a checkpoint, committed when this returns."""

    def progress(self, job_id: int, attempt: int, progress_json: str) -> None:
        """Note progress, written with the next flush (about a second later at most)."""

    async def parent_results(self, ids: list[int]) -> dict[int, Any]:
        """The stored results of the succeeded jobs among `ids`, by id."""


class JobContext:
    """The job a handler (or a middleware) is running, from `pgjobs.current_job()`.

    Attributes:
        id: the job's id.
        attempt: this run's attempt number, counting from 1.
        task: the job's task name as stored: for a handler registered for a
            pattern (`name="reports.*"`), the full name ("reports.daily").
        queue: the queue it was claimed from.
        meta: the JSON metadata it was enqueued with (the dict itself: a
            change made here is not written back).
        worker_id: the id of the worker running it (`pgjobs.workers.id`),
            None when the executor runs outside a registered worker.
        correlation_id: the id bound as `correlation_id` in structlog's
            contextvars for this run, which jobs enqueued from the handler
            inherit: the one given at enqueue (or inherited), else the trace
            id while tracing is on, else the job's id. None outside a worker.
        cancelled: whether the job was asked to stop. Cancelling is
            cooperative: a sync handler that runs long checks this, or calls
            `raise_if_cancelled()`, between steps.
        conn: for a task registered with `transactional=True`, the
            AsyncConnection whose open transaction will also record the
            job's success (see `conn`).
    """

    __slots__ = (
        "_cancelled",
        "_conn",
        "_job",
        "_recorder",
        "_state",
        "correlation_id",
        "worker_id",
    )

    def __init__(
        self,
        job: _Claimed,
        worker_id: int | None,
        recorder: Recorder | None = None,
        correlation_id: str | None = None,
    ) -> None:
        self._job = job
        self.worker_id = worker_id
        self.correlation_id = correlation_id
        self._cancelled = False
        self._conn: psycopg.AsyncConnection[Any] | None = None
        self._recorder = recorder
        self._state: Any = job.checkpoint

    # Read through from the claimed job, so that making a context costs one
    # object per run, not a copy of every field (it is made for every job).
    @property
    def id(self) -> int:
        """The job's id."""
        return self._job.id

    @property
    def attempt(self) -> int:
        """This run's attempt number, counting from 1."""
        return self._job.attempts

    @property
    def task(self) -> str:
        """The job's task name as stored (the full name for a pattern's handler)."""
        return self._job.task

    @property
    def queue(self) -> str:
        """The queue the job was claimed from."""
        return self._job.queue

    @property
    def meta(self) -> dict[str, Any]:
        """The job's JSON metadata."""
        return self._job.meta

    @property
    def cancelled(self) -> bool:
        """Whether the job was asked to stop; the handler decides when to look."""
        return self._cancelled

    @property
    def conn(self) -> psycopg.AsyncConnection[Any]:
        """The transaction of a `transactional=True` task: what the handler writes here
        commits together with the job's success, or not at all.

        The worker opens the transaction before the handler (and its
        middleware) runs and commits it after the handler returns, once the
        job's success is written in it; if the handler raises, times out or
        leaves the transaction idle past the task's
        `idle_in_transaction_timeout`, everything in it rolls back. Do not
        commit or roll it back yourself; `async with conn.transaction():`
        makes a savepoint. Rows come back as tuples.

        Raises:
            JobContextError: the task is not transactional (or the handler has returned).
        """
        if self._conn is None:
            raise JobContextError(
                f"current_job().conn is only set while the handler of a transactional task "
                f"runs; task {self._job.task!r} was not registered with "
                "@app.task(transactional=True)"
            )
        return self._conn

    def raise_if_cancelled(self) -> None:
        """Raise JobCancelledError if the job was asked to stop; otherwise do nothing."""
        if self._cancelled:
            raise JobCancelledError(self._job.id)

    @property
    def checkpoint_state(self) -> Any:
        """What the last `checkpoint` saved, in this attempt or an earlier one; None if nothing."""
        return self._state

    def checkpoint(self, state: Any) -> None:
        """Save `state` (JSON) for the next attempt; committed when this returns.

        A retry, or a rescue after this worker dies, reads it back as
        `checkpoint_state`; the job's success clears it. For sync handlers:
        an async handler awaits `checkpoint_async`.

        Raises:
            ArgumentsError: `state` is not JSON (or not storable as jsonb).
            JobContextError: called on the worker's event loop (use checkpoint_async).
        """
        state_json = dump_json(state, "the checkpoint state")
        recorder = self._recorder
        if recorder is not None:
            if _on_loop(recorder.loop):
                raise JobContextError(
                    "checkpoint() blocks, and this is the worker's event loop: in an async "
                    "handler, use `await pgjobs.current_job().checkpoint_async(state)`"
                )
            write = recorder.checkpoint(self._job.id, self._job.attempts, state_json)
            asyncio.run_coroutine_threadsafe(write, recorder.loop).result()
        self._state = state

    async def checkpoint_async(self, state: Any) -> None:
        """Async twin of `checkpoint`, for async handlers."""
        state_json = dump_json(state, "the checkpoint state")
        if self._recorder is not None:
            await self._recorder.checkpoint(self._job.id, self._job.attempts, state_json)
        self._state = state

    @property
    def parents(self) -> tuple[int, ...]:
        """The ids this job was enqueued to wait for (`depends_on`), in that order; () if none."""
        ids = self._job.meta.get(DEPENDS_ON_KEY)
        if not isinstance(ids, list):
            return ()
        return tuple(int(i) for i in ids)

    def parent_results(self) -> dict[int, Any]:
        """The return values of the jobs this one depended on (`depends_on`), by job id.

        A job with `depends_on` runs only once every parent has succeeded
        (or ended, for one named with `always=True`), so each succeeded
        parent's result is there: as stored in `jobs.result` (JSON,
        so a tuple comes back a list; None for a task with keep_result=False).
        A parent whose task keeps no history is deleted when it finishes,
        and is left out, as is a parent named with
        `pgjobs.after(id, always=True)` that failed or was cancelled (it
        left no result; `parents` still lists it). A job without `depends_on` gets {}. For sync
        handlers: an async handler awaits `parent_results_async`.

        Raises:
            JobContextError: called on the worker's event loop (use
                parent_results_async), or with no worker to read through.
        """
        parents = self.parents
        if not parents:
            return {}
        recorder = self._reader()
        if _on_loop(recorder.loop):
            raise JobContextError(
                "parent_results() blocks, and this is the worker's event loop: in an async "
                "handler, use `await pgjobs.current_job().parent_results_async()`"
            )
        read = recorder.parent_results(list(parents))
        found = asyncio.run_coroutine_threadsafe(read, recorder.loop).result()
        return {i: found[i] for i in parents if i in found}

    async def parent_results_async(self) -> dict[int, Any]:
        """Async twin of `parent_results`, for async handlers."""
        parents = self.parents
        if not parents:
            return {}
        found = await self._reader().parent_results(list(parents))
        return {i: found[i] for i in parents if i in found}

    def _reader(self) -> Recorder:
        if self._recorder is None:
            raise JobContextError(
                "parent_results() reads through the worker's connections, and this job runs "
                "outside a worker"
            )
        return self._recorder

    def progress(self, done: float, total: float | None = None, message: str | None = None) -> None:
        """Report how far the job is: `done` of `total` (optional), with a message.

        Cheap to call often: the latest report is written about once a
        second at most, together with the other running jobs' (and shows in
        `jobs show`, the API and the dashboard).

        Raises:
            ConfigurationError: `done` or `total` is not a finite number.
        """
        for name, value in (("done", done), ("total", total)):
            if value is None and name == "total":
                continue
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ConfigurationError(f"progress {name} must be a number, got {value!r}")
            if not math.isfinite(value):
                raise ConfigurationError(f"progress {name} must be finite, got {value!r}")
        report: dict[str, Any] = {"done": done, "total": total, "message": message}
        if self._recorder is not None:
            self._recorder.progress(
                self._job.id, self._job.attempts, dump_json(report, "the progress message")
            )

    def _mark_cancelled(self) -> None:
        """Set `cancelled` (the executor's side of the flag; handlers only read it)."""
        self._cancelled = True

    def __repr__(self) -> str:
        return (
            f"<pgjobs.JobContext id={self.id} task={self.task!r} attempt={self.attempt} "
            f"queue={self.queue!r}{' cancelled' if self._cancelled else ''}>"
        )


def _on_loop(loop: asyncio.AbstractEventLoop) -> bool:
    try:
        return asyncio.get_running_loop() is loop
    except RuntimeError:  # no loop in this thread: a sync handler's
        return False


_current: ContextVar[JobContext] = ContextVar("pgjobs.current_job")

#: Set and reset by the executor around each run (ContextVar.set and .reset).
set_current = _current.set
reset_current = _current.reset


def current_correlation_id() -> str | None:
    """The correlation id of the job running in this context; None outside a run."""
    context = _current.get(None)
    return None if context is None else context.correlation_id


def current_job() -> JobContext:
    """The job this handler runs for: its id, attempt, task, queue, meta and worker.

    Works in sync and async handlers, and in middleware, while a worker runs
    the job (and in asyncio tasks the handler starts, which copy its context;
    a thread it starts itself does not).

    Raises:
        JobContextError: called outside a job handler.
    """
    try:
        return _current.get()
    except LookupError:
        raise JobContextError(
            "pgjobs.current_job() is only available inside a job handler (or a middleware) "
            "while a worker runs the job; calling a task function directly runs it without "
            "a job, so pass what it needs as arguments there"
        ) from None


#: What `call_next` is in a middleware: it runs the rest of the chain (the
#: next middleware, at the end the handler) and returns its result.
CallNext: TypeAlias = Callable[[], Awaitable[Any]]

#: A middleware: `async def mw(job: JobContext, call_next: CallNext) -> Any`.
Middleware: TypeAlias = Callable[[JobContext, CallNext], Awaitable[Any]]


def chain(middleware: Sequence[Middleware], job: JobContext, handler: CallNext) -> Awaitable[Any]:
    """Run `handler` through `middleware`, the first one outermost.

    Each middleware gets the job and a `call_next` that runs the ones after
    it and then `handler`, and may call it once, several times (a retry), or
    not at all (its own return value is then the result).
    """
    call = handler
    for each in reversed(middleware):
        call = functools.partial(each, job, call)
    return call()
