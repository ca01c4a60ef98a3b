"""Executor: runs one claimed job's handler and turns what happened into an Outcome."""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import dataclasses
import functools
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from pgjobs import _routing, _trace
from pgjobs._context import (
    JobContext,
    Middleware,
    Recorder,
    Snooze,
    chain,
    reset_current,
    set_current,
)
from pgjobs._log import get_logger
from pgjobs._serde import dump_result, scrub_nul
from pgjobs._task import Task
from pgjobs.errors import (
    ArgumentsError,
    ConfigurationError,
    HandlerExitError,
    ResultTooLargeError,
    TaskTimeoutError,
    UnknownTaskError,
)
from pgjobs.worker import _outcome
from pgjobs.worker._metrics import Metrics
from pgjobs.worker._outcome import ClaimedJob, Outcome
from pgjobs.worker._tracing import traced

if TYPE_CHECKING:
    from pgjobs.worker._transaction import Transactions


def _shield_exit(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    # SystemExit escaping a thread or an asyncio task would stop the whole
    # worker (asyncio re-raises it out of the event loop). Turn it into an
    # ordinary failure of this one job.
    try:
        return fn(*args, **kwargs)
    except (SystemExit, KeyboardInterrupt) as exc:
        raise HandlerExitError(f"the handler raised {type(exc).__name__}({exc})") from exc


async def _shield_exit_async(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    try:
        return await fn(*args, **kwargs)
    except (SystemExit, KeyboardInterrupt) as exc:
        raise HandlerExitError(f"the handler raised {type(exc).__name__}({exc})") from exc


def _uncancel() -> int:
    """Undo one cancel() of the current task; the number still pending."""
    current = asyncio.current_task()
    return current.uncancel() if current is not None else 0


#: Threads kept beyond `concurrency` at least, for handlers abandoned mid-run.
SPARE_THREADS = 16


class Executor:
    """Runs handlers: async ones as tasks on the loop, sync ones in a thread pool.

    Args:
        tasks: the App's tasks by name.
        threads: the worker's concurrency, which sizes the thread pool.
        worker_id: the worker's row id, carried by every job event it logs.
        metrics: where to record each job's outcome, run time and wait; None
            records nothing, at the cost of one test per job.
        middleware: run around every handler, the first outermost (`App.middleware`).
        transactions: where a `transactional=True` task's handler gets its
            transaction (the Worker makes one when the App has such a task);
            None fails such jobs with a ConfigurationError.
    """

    def __init__(
        self,
        tasks: Mapping[str, Task[Any, Any]],
        threads: int,
        worker_id: int | None = None,
        metrics: Metrics | None = None,
        middleware: Sequence[Middleware] = (),
        transactions: Transactions | None = None,
        recorder: Recorder | None = None,
    ) -> None:
        self.tasks = tasks
        self.transactions = transactions
        #: Where handlers' checkpoints and progress go; None keeps them in memory.
        self.recorder = recorder
        self.metrics = metrics
        self.worker_id = worker_id
        self.middleware = tuple(middleware)
        #: The context of each job whose handler runs, by job id (see `cancel`).
        self.contexts: dict[int, JobContext] = {}
        # A sync handler that overruns its timeout cannot be stopped: its job
        # is recorded as failed and its slot freed, but its thread sleeps on.
        # Spare threads keep such abandoned ones from starving the jobs that
        # take their slots (the slots, not the pool, bound the concurrency;
        # the pool only starts a thread when none is idle).
        self.threads = ThreadPoolExecutor(
            max_workers=threads + max(threads, SPARE_THREADS), thread_name_prefix="pgjobs-job"
        )
        #: Threads still running a handler whose job was given up on.
        self.abandoned = 0
        # Bound once here: each job's own fields are bound only when it logs.
        self._log = get_logger() if worker_id is None else get_logger(worker_id=worker_id)
        # Per-job debug lines are skipped without a call unless debug is on.
        enabled = getattr(self._log, "is_enabled_for", None)
        self._debug = enabled is None or bool(enabled(logging.DEBUG))
        # structlog's variable for `correlation_id` (see `run`).
        self._logged = _trace.log_var()

    def _job_log(self, job: ClaimedJob) -> Any:
        return self._log.bind(job_id=job.id, task=job.task, queue=job.queue, attempt=job.attempts)

    async def run(self, job: ClaimedJob) -> Outcome:
        """Run `job` and return its outcome; never raises except CancelledError.

        The run has its correlation id bound in structlog's contextvars (and
        on its JobContext, which enqueues from the handler inherit) and,
        while tracing is on, a span of its own (pgjobs/worker/_tracing.py).
        Without tracing the id is the one stored with the job, else its id;
        it is set here, with no coroutine around the run: an extra layer and
        the helpers it called cost a no-op job about 1.5 µs, 5% of the
        worker's time for it.
        """
        tracer = _trace.tracer()
        if tracer is not None:
            return await traced(tracer, self._run, job)
        correlation_id = _trace.stored_correlation_id(job.meta) or str(job.id)
        logged = self._logged.set(correlation_id)
        try:
            return await self._run(job, correlation_id)
        finally:
            self._logged.reset(logged)

    async def _run(self, job: ClaimedJob, correlation_id: str) -> Outcome:
        """`run`, without what surrounds it.

        The job's logger is bound only when something is logged: binding
        one for every job was 3% of a no-op drain. With metrics, a job is
        recorded where its outcome is made, with the handler's time (from
        the `started` the handler path takes anyway): a coroutine wrapped
        around this one to time it cost about 0.7 µs more per job.
        """
        task = self.tasks.get(job.task)
        if task is None:
            # Not the name of a task: a pattern ("reports.*") may serve it.
            registered = _routing.route(self.tasks, job.task)
            if registered is not None:
                task = self.tasks[registered]
        if task is None:
            unknown = UnknownTaskError(job.task, list(self.tasks))
            self._job_log(job).error("job.failed", error=str(unknown), retryable=False)
            return self._recorded(job, _outcome.failed(job, unknown, None))
        try:
            args, kwargs = task.bind.call(job.args)
        except ArgumentsError as exc:
            self._job_log(job).error("job.failed", error=str(exc), retryable=False)
            return self._recorded(job, _outcome.failed(job, exc, None))

        debug = self._debug
        if debug:
            self._job_log(job).debug("job.started")
        # The context is current in this job's asyncio task (and so in the
        # copy a sync handler's thread runs in) until the handler is done.
        context = JobContext(job, self.worker_id, self.recorder, correlation_id)
        self.contexts[job.id] = context
        token = set_current(context)
        started = time.perf_counter()
        try:
            if task.config.transactional:
                running = self._transactional(job, task, context, args, kwargs)
            elif self.middleware:
                running = _shield_exit_async(
                    chain,
                    self.middleware,
                    context,
                    functools.partial(self._call, task, args, kwargs),
                )
            else:
                running = self._call(task, args, kwargs)
            timeout = task.config.timeout if job.timeout is None else job.timeout
            # wait_for(x, None) only awaits x, through a coroutine of its own.
            result = await running if timeout is None else await asyncio.wait_for(running, timeout)
        except TimeoutError:
            limit = task.config.timeout if job.timeout is None else job.timeout
            overran = TaskTimeoutError(f"the handler ran past its timeout of {limit}s")
            return self._failure(job, task, overran, started)
        except asyncio.CancelledError:
            # Cancelled through asyncio by `cancel` (pgjobs.cancel() of this
            # job) and by nothing else: the job ends cancelled. A stopping
            # worker's cancel (as well) gives the job back instead.
            if context.cancelled and _uncancel() == 0:
                return self._cancelled(job, task, started)
            if self.metrics is not None:  # a stopping worker gives the job back
                self.metrics.released(job, time.perf_counter() - started)
            raise
        except Exception as exc:  # the handler's own failure, whatever it is
            if context.cancelled:  # raise_if_cancelled(), or anything after the cancel
                return self._cancelled(job, task, started)
            if isinstance(exc, Snooze):
                return self._snoozed(job, task, exc, started)
            return self._failure(job, task, exc, started)
        finally:
            reset_current(token)
            self.contexts.pop(job.id, None)

        if task.config.transactional:  # written already, in the handler's transaction
            return self._committed(job, result, started)
        result_json = None
        if task.config.keep_result and result is not None:
            try:
                result_json = dump_result(result)
            except ResultTooLargeError as err:
                # Not stored truncated, and not retried (it would be as large again).
                self._job_log(job).error("job.failed", error=str(err), retryable=False)
                keep = task.config.keep_history
                return self._recorded(job, _outcome.failed(job, err, None, keep=keep))
            except ArgumentsError as err:
                self._job_log(job).warning("job.result_dropped", error=str(err))
        if debug:
            duration = round(time.perf_counter() - started, 6)
            self._job_log(job).debug("job.succeeded", duration=duration)
        if self.metrics is not None:
            self.metrics.finished(job, "succeeded", time.perf_counter() - started)
        return _outcome.succeeded(job, result_json, keep=task.config.keep_history)

    def _result_json(self, job: ClaimedJob, task: Task[Any, Any], result: Any) -> str | None:
        """The handler's return value as JSON to store; None if it is not kept or not JSON."""
        if not task.config.keep_result or result is None:
            return None
        try:
            return dump_result(result)
        except ResultTooLargeError:
            raise  # the attempt fails: not stored truncated
        except ArgumentsError as err:
            self._job_log(job).warning("job.result_dropped", error=str(err))
            return None

    def _transactional(
        self,
        job: ClaimedJob,
        task: Task[Any, Any],
        context: JobContext,
        args: Any,
        kwargs: Any,
    ) -> Awaitable[Outcome]:
        """The run of a `transactional=True` task: handler and success in one transaction.

        See pgjobs/worker/_transaction.py; what it raises fails the attempt.
        """
        if self.transactions is None:
            raise ConfigurationError(
                f"task {task.name!r} is transactional, but this executor has no connections "
                "for its transactions; run it with a pgjobs Worker"
            )
        call: Callable[[], Awaitable[Any]] = functools.partial(self._call, task, args, kwargs)
        if self.middleware:
            call = functools.partial(_shield_exit_async, chain, self.middleware, context, call)
        encode = functools.partial(self._result_json, job, task)
        return self.transactions.run(job, task.config, context, call, encode)

    def _committed(self, job: ClaimedJob, outcome: Outcome, started: float) -> Outcome:
        """A transactional run's written outcome, logged and counted."""
        seconds = time.perf_counter() - started
        if self._debug and outcome.status == "succeeded":
            self._job_log(job).debug("job.succeeded", duration=round(seconds, 6))
        if self.metrics is not None:
            self.metrics.finished(job, outcome.status, seconds)
        return outcome

    def cancel(self, job_id: int) -> bool:
        """Set `cancelled` in the context of a job whose handler runs here.

        Cooperative: the handler sees `current_job().cancelled` turn true, and
        stops where it checks (`raise_if_cancelled()`); the caller cancels the
        asyncio task of an async handler too (`is_async`). Once the flag is set
        the run ends `cancelled` whatever the handler then raises.

        Returns:
            True if this call set the flag; False if no handler of that job
            runs here, or it was set already.
        """
        context = self.contexts.get(job_id)
        if context is None or context.cancelled:
            return False
        context._mark_cancelled()
        return True

    def is_async(self, job_id: int) -> bool:
        """Whether the handler running `job_id` here is a coroutine function."""
        context = self.contexts.get(job_id)
        if context is None:
            return False
        name: str | None = context.task
        if name not in self.tasks:
            name = _routing.route(self.tasks, context.task)
        return name is not None and self.tasks[name].is_async

    def _snoozed(
        self, job: ClaimedJob, task: Task[Any, Any], snooze: Snooze, started: float
    ) -> Outcome:
        try:
            seconds = snooze.seconds()
        except ValueError as exc:
            return self._failure(job, task, exc, started)
        cap = task.config.max_snoozes
        if job.snoozes >= cap:
            over = RuntimeError(
                f"the job snoozed {job.snoozes} times, the most its task allows "
                f"(@app.task(max_snoozes={cap})); this attempt fails instead"
            )
            return self._failure(job, task, over, started)
        if self.metrics is not None:
            self.metrics.finished(job, "snoozed", time.perf_counter() - started)
        self._job_log(job).info("job.snoozed", delay=round(seconds, 3), snoozes=job.snoozes + 1)
        return _outcome.snoozed(job, seconds)

    def _cancelled(self, job: ClaimedJob, task: Task[Any, Any], started: float) -> Outcome:
        seconds = time.perf_counter() - started
        if self.metrics is not None:
            self.metrics.finished(job, "cancelled", seconds)
        self._job_log(job).warning("job.cancelled", duration=round(seconds, 6))
        return _outcome.cancelled(job, keep=task.config.keep_history)

    def _recorded(self, job: ClaimedJob, outcome: Outcome) -> Outcome:
        """`outcome`, recorded in the metrics as a run of no time (the handler never ran)."""
        if self.metrics is not None:
            self.metrics.finished(job, outcome.status, 0.0)
        return outcome

    def _call(self, task: Task[Any, Any], args: Any, kwargs: Any) -> Any:
        if task.is_async:
            return _shield_exit_async(task.fn, *args, **kwargs)
        call = functools.partial(_shield_exit, task.fn, *args, **kwargs)
        running = self.threads.submit(contextvars.copy_context().run, call)
        waited = asyncio.wrap_future(running)
        waited.add_done_callback(lambda w: self._given_up(w, running, task.name))
        return waited

    def _given_up(self, waited: asyncio.Future[Any], running: Future[Any], name: str) -> None:
        """Count a thread whose handler still runs after its job was given up (timeout, stop)."""
        if not waited.cancelled() or running.done():
            return
        self.abandoned += 1
        self._log.warning(
            "job.thread_abandoned",
            task=name,
            abandoned=self.abandoned,
            note="a sync handler ignored its timeout or the stop; its thread runs on",
        )
        loop = asyncio.get_running_loop()
        running.add_done_callback(lambda _: self._thread_returned(loop))

    def _thread_returned(self, loop: asyncio.AbstractEventLoop) -> None:
        # Called in the handler's own thread: count on the loop's thread.
        with contextlib.suppress(RuntimeError):  # the loop is closed: nobody counts any more
            loop.call_soon_threadsafe(self._count_returned)

    def _count_returned(self) -> None:
        self.abandoned -= 1

    def _failure(
        self, job: ClaimedJob, task: Task[Any, Any], exc: BaseException, started: float
    ) -> Outcome:
        log = self._job_log(job)
        try:
            str(exc)
        except Exception as broken:  # a handler's exception whose __str__ itself raises
            exc = RuntimeError(
                f"{type(exc).__name__} raised by the handler; its message could not be read "
                f"({type(broken).__name__} in __str__)"
            )
        outcome = _outcome.failed(job, exc, task.config.retry, keep=task.config.keep_history)
        # A NUL in the message would make jsonb refuse the whole batch of outcomes.
        outcome = dataclasses.replace(outcome, error=scrub_nul(outcome.error))
        seconds = time.perf_counter() - started
        if self.metrics is not None:
            self.metrics.finished(job, outcome.status, seconds)
        duration = round(seconds, 6)
        error = f"{type(exc).__name__}: {exc}"[:500]
        if outcome.status == "queued":
            log.warning(
                "job.retrying", error=error, retry_in=round(outcome.delay, 3), duration=duration
            )
        else:
            log.error("job.failed", error=error, duration=duration, retryable=True)
        return outcome

    def shutdown(self) -> None:
        """Stop accepting thread work; threads still running are left to finish alone."""
        self.threads.shutdown(wait=False, cancel_futures=True)
