"""App: the task registry, configuration, and the connection pools it owns."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import inspect
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any, ParamSpec, TypeVar, Unpack, overload

import psycopg
from psycopg_pool import AsyncConnectionPool, ConnectionPool, PoolTimeout

from pgjobs import (
    _admin,
    _breaker,
    _connect,
    _cron,
    _dsn,
    _enqueue,
    _memory,
    _queue,
    _routing,
    _schedule,
    _webhooks,
    _workflow,
)
from pgjobs._breaker import CircuitBreaker
from pgjobs._context import Middleware
from pgjobs._enqueue import AsyncConn, JobSpec, SyncConn
from pgjobs._job import Job, Priority
from pgjobs._options import EnqueueKwargs, EnqueueOptions, check_queue
from pgjobs._retry import Exponential, RetryPolicy
from pgjobs._serde import DEFAULT_MAX_PAYLOAD_BYTES, dump_args
from pgjobs._task import PrefixTask, Task, TaskConfig, task_name
from pgjobs.errors import (
    AmbiguousTaskError,
    ConfigurationError,
    DatabaseUnavailableError,
    JobNotFoundError,
    UnknownTaskError,
)

P = ParamSpec("P")
R = TypeVar("R")
M = TypeVar("M", bound=Middleware)

# The options of a job whose task this App does not know (strict=False).
_DEFAULTS = EnqueueOptions()


class App:
    """A pgjobs application: its tasks, its database, and its pools.

    Args:
        dsn: the PostgreSQL address. Default: PGJOBS_DSN, else DATABASE_URL,
            read when first needed (so an App can be built at import time).
        strict: reject `app.enqueue("name")` for names not registered here.
            Turn it off in a producer that enqueues tasks defined elsewhere.
        max_payload_bytes: the largest accepted JSON arguments of one job.
        pool_max_size: the most connections each of the App's pools opens.
        pooled: the DSN is a transaction-pooling PgBouncer: the App's
            connections never prepare a statement and send no session
            settings (see pgjobs/_connect.py); a Worker of this App makes its
            connections the same way (and still needs `listen=False`).
    """

    def __init__(
        self,
        dsn: str | None = None,
        *,
        strict: bool = True,
        max_payload_bytes: int = DEFAULT_MAX_PAYLOAD_BYTES,
        pool_max_size: int = 4,
        pooled: bool = False,
    ) -> None:
        self._dsn = _dsn.normalise(dsn) if dsn else None
        self.strict = strict
        self.max_payload_bytes = max_payload_bytes
        self.pool_max_size = pool_max_size
        self.pooled = pooled
        #: Tasks by name; a handler registered for a pattern is under the
        #: pattern ("reports.*"). See `task_for` for which one serves a job.
        self.tasks: dict[str, Task[Any, Any]] = {}
        #: The middleware around every run, in declaration order (`middleware`).
        self.middlewares: list[Middleware] = []
        self.schedules: dict[str, _schedule.Schedule] = {}
        #: Webhooks declared in code, by name (`webhook`).
        self.webhooks: dict[str, _webhooks.Webhook] = {}
        #: Queue limits declared with `queue`, by queue name.
        self.queues: dict[str, _queue.QueueSettings] = {}
        self._lock = threading.Lock()
        self._pool: ConnectionPool[psycopg.Connection[Any]] | None = None
        self._async_pools: dict[asyncio.AbstractEventLoop, AsyncConnectionPool[Any]] = {}
        #: The in-memory store while `pgjobs.testing.in_memory(self)` is active.
        self._memory: _memory.MemoryQueue | None = None
        # Found by pgjobs.chain and pgjobs.group when they are enqueued without conn=.
        _workflow.APPS.add(self)

    def _in_memory(self) -> bool:
        """Whether an enqueue must ask `_memory_store` (this App, or another, is in memory)."""
        return self._memory is not None or _memory.active > 0

    def _memory_store(self) -> _memory.MemoryQueue | None:
        """The in-memory store, or None to use the database; refuses a database while
        another App is in memory (see pgjobs/_memory.py)."""
        if self._memory is None and _memory.active:
            raise _memory.refuse_database(self)
        return self._memory

    def __repr__(self) -> str:
        return f"<pgjobs.App tasks={len(self.tasks)}>"

    @property
    def dsn(self) -> str:
        """The resolved DSN; raises ConfigurationError with directions when none is set."""
        if self._dsn is None:
            self._dsn = _dsn.require()
        return self._dsn

    @dsn.setter
    def dsn(self, value: str) -> None:
        self._dsn = _dsn.normalise(value)

    # -- registration ------------------------------------------------------

    @overload
    def task(self, fn: Callable[P, R], /) -> Task[P, R]: ...

    @overload
    def task(
        self,
        *,
        name: str | None = None,
        queue: str = "default",
        priority: int = Priority.NORMAL,
        max_attempts: int = 3,
        timeout: float | None = None,
        retry: RetryPolicy | None = None,
        keep_result: bool = True,
        keep_history: bool = True,
        transactional: bool = False,
        idle_in_transaction_timeout: float | None = None,
        max_snoozes: int = 100,
        circuit_breaker: CircuitBreaker | None = None,
    ) -> Callable[[Callable[P, R]], Task[P, R]]: ...

    # mypy reports a false "does not accept all possible parameters" here: the
    # second overload returns a generic callable whose ParamSpec is bound only
    # later, at decoration. The implementation does accept every call.
    def task(  # type: ignore[misc]
        self,
        fn: Callable[..., Any] | None = None,
        /,
        *,
        name: str | None = None,
        queue: str = "default",
        priority: int = Priority.NORMAL,
        max_attempts: int = 3,
        timeout: float | None = None,
        retry: RetryPolicy | None = None,
        keep_result: bool = True,
        keep_history: bool = True,
        transactional: bool = False,
        idle_in_transaction_timeout: float | None = None,
        max_snoozes: int = 100,
        circuit_breaker: CircuitBreaker | None = None,
    ) -> Any:
        """Register a function (sync or async) as a task.

        Args:
            name: the name stored in `jobs.task`; default `module.qualname`.
                A pattern ending in ".*" (`name="reports.*"`) serves every job
                whose task name starts with "reports." and has no handler of
                its own; an exact name wins, then the longest prefix. Such
                jobs are enqueued by their full name (`app.enqueue`, SQL).
            queue: the default queue of its jobs.
            priority: the default priority, 0 (critical) to 4 (bulk).
            max_attempts: attempts before a job is `failed` (dead-lettered).
            timeout: seconds a run may take before it counts as failed.
            retry: the backoff policy; default Exponential().
            keep_result: store the handler's return value in `jobs.result`.
            keep_history: keep its finished jobs in `pgjobs.job_history` for
                their retention; False deletes each as it finishes (the
                cheapest path: nothing to write, nothing to drop later).
            transactional: run the handler inside a transaction that also
                records the job's success, committed together (exactly-once
                effects on this database): the handler reads its connection
                from `pgjobs.current_job().conn`. Only `async def` handlers
                can be transactional (a sync one is refused here). Each such
                job costs one transaction and one connection while it runs,
                instead of a share of a batched outcome; see the README.
            idle_in_transaction_timeout: seconds the handler's transaction may
                sit idle (between statements) before PostgreSQL ends it, as
                its `idle_in_transaction_session_timeout`; the attempt then
                fails and its writes roll back. Default 60; only with
                `transactional=True`.
            max_snoozes: how many times one job may `raise pgjobs.Snooze(...)`;
                the attempt that would snooze once more fails instead.
            circuit_breaker: `pgjobs.CircuitBreaker(failures=5, cooldown=60)`:
                after that many consecutive failed attempts, no worker claims
                the task's jobs for the cooldown, then one trial job decides
                (`pgjobs.task_breakers`; see the README, "Circuit breakers").

        Raises:
            ConfigurationError: a bad option, or a name registered twice.
        """
        check_queue(queue)
        if timeout is not None and not timeout > 0:
            raise ConfigurationError(f"timeout must be a positive number of seconds, got {timeout}")
        if isinstance(max_snoozes, bool) or not isinstance(max_snoozes, int) or max_snoozes < 0:
            raise ConfigurationError(f"max_snoozes must be 0 or more, got {max_snoozes!r}")
        defaults = EnqueueOptions(queue=queue, priority=priority, max_attempts=max_attempts)
        config = TaskConfig(
            timeout=timeout,
            retry=retry or Exponential(),
            keep_result=keep_result,
            keep_history=keep_history,
            transactional=transactional,
            idle_in_transaction_timeout=_idle_timeout(transactional, idle_in_transaction_timeout),
            max_snoozes=max_snoozes,
            circuit_breaker=circuit_breaker,
        )

        def register(func: Callable[..., Any]) -> Task[Any, Any]:
            registered = task_name(func) if name is None else name
            _routing.check_name(registered)
            _breaker.check(registered, circuit_breaker)
            if transactional and not inspect.iscoroutinefunction(func):
                raise ConfigurationError(
                    f"task {registered!r} is transactional=True but its handler is a sync "
                    "function; a transactional handler must be `async def`: it gets an "
                    "AsyncConnection in the transaction that records its success, from "
                    "pgjobs.current_job().conn. Make the handler async (run blocking work "
                    "with asyncio.to_thread), or drop transactional=True"
                )
            if registered in self.tasks:
                raise ConfigurationError(
                    f"task name {registered!r} is registered twice; give one of them name='...'"
                )
            kind = PrefixTask if _routing.is_pattern(registered) else Task
            task: Task[Any, Any] = kind(self, func, registered, defaults, config)
            self.tasks[registered] = task
            return task

        return register(fn) if fn is not None else register

    def task_for(self, name: str) -> Task[Any, Any] | None:
        """The task that runs jobs named `name`: its own, else the longest matching pattern's."""
        registered = _routing.route(self.tasks, name)
        return None if registered is None else self.tasks[registered]

    # -- middleware --------------------------------------------------------

    def middleware(self, fn: M) -> M:
        """Wrap every run of every task (sync and async handlers) in `fn`; usable as a decorator.

        The signature is `async def fn(job: pgjobs.JobContext, call_next) -> Any`:
        `await call_next()` runs the rest of the chain and returns the
        handler's result (a sync handler runs in its thread inside the
        innermost call). What `fn` returns is the job's result; what it
        raises fails the attempt as a handler's error would (and is retried
        by the task's policy). Returning without calling `call_next` skips
        the handler. Middleware runs in declaration order, the first
        declared outermost, inside the task's timeout; a worker takes the
        list as it is when it starts.

        Raises:
            ConfigurationError: `fn` is not an async function.
        """
        # An async function, or an object whose __call__ is one (a circuit breaker's state).
        if not (inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(type(fn).__call__)):
            raise ConfigurationError(
                f"middleware {fn!r} is not an async function: a middleware is "
                "`async def mw(job, call_next)` and awaits call_next() (it wraps sync "
                "handlers too, which run in their thread inside call_next)"
            )
        self.middlewares.append(fn)
        return fn

    # -- cron schedules (the model and its checks live in pgjobs/_schedule.py) --

    def cron(
        self,
        expression: str,
        *,
        tz: str = "UTC",
        name: str | None = None,
        args: dict[str, Any] | None = None,
        backfill: str | float | dt.timedelta | None = None,
        skip_if_running: bool = False,
        **task_options: Any,
    ) -> Callable[[Callable[P, R]], Task[P, R]]:
        """Register a function as a task, and a schedule of the same name that fires it.

        `@app.cron("*/5 * * * *", tz="Europe/Paris")`. Other keyword
        arguments (queue, priority, max_attempts, timeout, retry) go to
        `app.task`; see `schedule` for the rest.

        Raises:
            ConfigurationError: a bad expression or timezone, or a name taken.
        """
        _schedule.parse_backfill(backfill, name or expression)
        if name is not None and _routing.is_pattern(name):
            raise ConfigurationError(
                f"cron name {name!r} is a pattern: a schedule fires one full task name"
            )
        _cron.parse(expression, tz)  # fail before anything is registered

        def register(fn: Callable[P, R]) -> Task[P, R]:
            task = fn if isinstance(fn, Task) else self.task(name=name, **task_options)(fn)
            self.schedule(
                task.name,
                expression,
                task,
                args=args,
                tz=tz,
                backfill=backfill,
                skip_if_running=skip_if_running,
            )
            return task

        return register

    def schedule(
        self,
        name: str,
        expression: str,
        task: Task[Any, Any] | str,
        *,
        args: dict[str, Any] | None = None,
        queue: str | None = None,
        priority: int | None = None,
        tz: str = "UTC",
        backfill: str | float | dt.timedelta | None = None,
        skip_if_running: bool = False,
    ) -> _schedule.Schedule:
        """Declare a cron schedule: each tick enqueues `task` with `args`.

        Args:
            name: unique; how `pgjobs.schedules` and `pgjobs cron list` name it.
            expression: 5 cron fields (minute hour day month weekday), an
                optional 6th for seconds, or a nickname such as "@daily".
            task: a Task, or a task name (checked when a worker starts).
            args: the job's arguments.
            queue: its queue (default: the task's).
            priority: its priority (default: the task's).
            tz: the IANA timezone the expression is read in (default UTC).
            backfill: how far back ticks missed while no worker ran are still
                fired, as seconds, a timedelta or "1h"; default none (skipped).
            skip_if_running: skip a tick while the previous job is queued or running.

        Raises:
            ConfigurationError: a bad expression, timezone or option, or a name taken.
            ArgumentsError: `args` are not JSON or do not fit the task.
        """
        declared = _schedule.declare(
            name,
            expression,
            task,
            args=args,
            queue=queue,
            priority=priority,
            tz=tz,
            backfill=backfill,
            skip_if_running=skip_if_running,
            max_payload_bytes=self.max_payload_bytes,
        )
        return _schedule.add(self.schedules, declared)

    # -- webhooks (the model and its checks live in pgjobs/_webhooks.py) ------

    def webhook(
        self,
        url: str,
        *,
        events: Sequence[str],
        secret: str,
        tasks: Iterable[Task[Any, Any] | str] | Task[Any, Any] | str | None = None,
        queues: Iterable[str] | str | None = None,
        name: str | None = None,
        queue: str | None = None,
        timeout: float = _webhooks.DEFAULT_TIMEOUT,
        max_attempts: int = _webhooks.DEFAULT_MAX_ATTEMPTS,
    ) -> _webhooks.Webhook:
        """Declare a webhook: a signed JSON POST to `url` on each of `events`.

        Workers write it to `pgjobs.webhooks` when they start (as they do
        schedules). From then on, the statement that records a matching
        outcome also enqueues its delivery, a job of task `pgjobs.webhook`
        that any worker of the delivery's queue runs: retried with backoff
        (1 s, then x3), dead-lettered after `max_attempts`. Delivering never
        affects the job that fired. See the README's Webhooks section for
        the payload, the headers and how to check the signature.

        Args:
            url: the endpoint, http:// or https://.
            events: any of "failed" (an attempt failed), "dead-lettered"
                (the job ended failed, no attempt left), "succeeded",
                "cancelled".
            secret: the key of the HMAC-SHA256 signature, 16 bytes or more.
            tasks: only jobs of these tasks (Tasks or full names); default all.
            queues: only jobs of these queues; default all.
            name: unique; default the URL (two webhooks of one URL need names).
            queue: the queue of the deliveries; default the queue of the job
                that fired, which a worker already serves.
            timeout: seconds one delivery attempt may take (default 10).
            max_attempts: attempts of one delivery (default 8).

        Raises:
            ConfigurationError: a URL that is not http(s), a secret shorter
                than 16 bytes, an unknown event, a bad option, or a name taken.
        """
        declared = _webhooks.declare(
            url,
            events=events,
            secret=secret,
            tasks=tasks,
            queues=queues,
            name=name,
            queue=queue,
            timeout=timeout,
            max_attempts=max_attempts,
        )
        return _webhooks.add(self.webhooks, declared)

    # -- queue limits (the model and its checks live in pgjobs/_queue.py) --

    def queue(
        self,
        name: str,
        *,
        concurrency: int | None = None,
        key_concurrency: int | None = None,
        rate_limit: str | None = None,
        rate_burst: int | None = None,
        key_rate_limit: str | None = None,
        key_rate_burst: int | None = None,
    ) -> _queue.QueueSettings:
        """Declare a queue's limits, which hold across every worker process.

        `app.queue("exports", concurrency=5)` runs at most 5 jobs of the queue
        at once, however many workers serve it; `key_concurrency=1` runs at
        most one job per key (`options(key=...)`). `rate_limit="100/m"` starts
        at most 100 of its jobs a minute (N per s, m or h), evenly spaced, with
        at most `rate_burst` at once (by default a tenth of a second's worth,
        at least 1); `key_rate_limit` and `key_rate_burst` are the same for
        each key on its own. Workers write the limits
        to `pgjobs.queues` when they start (the last one started wins), and
        an UPDATE of that table changes them live. A limit is enforced by the
        claim itself; each worker's own `--concurrency` still bounds it.

        Raises:
            ConfigurationError: a bad queue name, a limit or burst that is not a
                positive integer, a rate that does not parse (or a burst
                without one), or the queue declared already with other limits.
        """
        declared = _queue.declare(
            name,
            concurrency=concurrency,
            key_concurrency=key_concurrency,
            rate_limit=rate_limit,
            rate_burst=rate_burst,
            key_rate_limit=key_rate_limit,
            key_rate_burst=key_rate_burst,
        )
        return _queue.add(self.queues, declared)

    def job(
        self, task: str, args: dict[str, Any] | None = None, **options: Unpack[EnqueueKwargs]
    ) -> JobSpec:
        """A job for a task named by string, checked and serialised (not yet written).

        Args:
            task: the task's name.
            args: its arguments by parameter name.
            **options: the enqueue options, as for `Task.options`; those left
                out keep the task's defaults (pgjobs' for an unknown task).

        Raises:
            UnknownTaskError: the App is strict and does not know the name.
            ArgumentsError: the arguments do not fit the task or are not JSON.
            ConfigurationError: an option is out of range.
            TypeError: an option that does not exist.
        """
        args = dict(args or {})
        if _routing.is_pattern(task):
            raise ConfigurationError(
                f"{task!r} is a pattern, not a task name: a job needs a full name, "
                f"such as '{task[:-1]}daily'"
            )
        registered = self.task_for(task)
        if registered is None and self.strict:
            raise UnknownTaskError(task, list(self.tasks))
        if registered is not None:
            args = registered.bind((), args)
            defaults = registered.defaults
        else:
            defaults = _DEFAULTS
        checked = defaults.merge(options)
        return JobSpec(task, dump_args(args, max_bytes=self.max_payload_bytes), checked)

    # -- writing -----------------------------------------------------------

    def enqueue(
        self,
        task: str,
        args: dict[str, Any] | None = None,
        *,
        conn: SyncConn | None = None,
        **options: Unpack[EnqueueKwargs],
    ) -> int | None:
        """Queue a task by name; see `job` for the arguments and options.

        Args:
            task: the task's name.
            args: its arguments by parameter name.
            conn: a psycopg Connection or a SQLAlchemy Session/Connection:
                the job is written in its open transaction, visible at commit
                and gone at rollback. Default: the App's pool, in a
                transaction of its own.
            **options: the enqueue options, as for `Task.options`.

        Returns:
            The job's id; see `Task.options` for a duplicate fingerprint.
        """
        return self.enqueue_spec(self.job(task, args, **options), conn)

    async def enqueue_async(
        self,
        task: str,
        args: dict[str, Any] | None = None,
        *,
        conn: AsyncConn | None = None,
        **options: Unpack[EnqueueKwargs],
    ) -> int | None:
        """Async twin of `enqueue`: `conn` is a psycopg AsyncConnection or a
        SQLAlchemy AsyncSession/AsyncConnection."""
        return await self.enqueue_spec_async(self.job(task, args, **options), conn)

    def enqueue_spec(self, spec: JobSpec, conn: SyncConn | None = None) -> int | None:
        """Write one prepared job, on `conn` (in its transaction) or on the App's pool."""
        if self._in_memory() and (memory := self._memory_store()) is not None:
            return memory.add(spec)
        if conn is not None:
            return _enqueue.enqueue_sync(conn, spec)
        with self.connection() as pooled:
            # One statement is a transaction of its own: in autocommit it
            # takes one round trip, where BEGIN, the statement and COMMIT
            # took three.
            try:
                pooled.autocommit = True
                return _enqueue.enqueue_sync(pooled, spec)
            finally:
                if not pooled.closed:
                    pooled.autocommit = False

    async def enqueue_spec_async(self, spec: JobSpec, conn: AsyncConn | None = None) -> int | None:
        """Async twin of `enqueue_spec`."""
        if self._in_memory() and (memory := self._memory_store()) is not None:
            return memory.add(spec)
        if conn is not None:
            return await _enqueue.enqueue_async(conn, spec)
        pool = await self._async_pool()
        async with pool.connection() as pooled:
            try:
                await pooled.set_autocommit(True)  # one round trip, as in `enqueue_spec`
                return await _enqueue.enqueue_async(pooled, spec)
            finally:
                if not pooled.closed:
                    await pooled.set_autocommit(False)

    def enqueue_many(self, jobs: Sequence[JobSpec], conn: SyncConn | None = None) -> list[int]:
        """Write many jobs in two statements (see `Task.job`); returns the new ids in order.

        Jobs whose fingerprint is held by an active job are skipped, whatever
        their on_conflict. With `conn`, the jobs are part of its transaction.
        """
        if (memory := self._memory_store()) is not None:
            return memory.add_many(list(jobs))
        if conn is not None:
            return _enqueue.enqueue_many_sync(conn, jobs)
        with self.connection() as pooled:
            return _enqueue.enqueue_many_sync(pooled, jobs)

    async def enqueue_many_async(
        self, jobs: Sequence[JobSpec], conn: AsyncConn | None = None
    ) -> list[int]:
        """Async twin of `enqueue_many`."""
        if (memory := self._memory_store()) is not None:
            return memory.add_many(list(jobs))
        if conn is not None:
            return await _enqueue.enqueue_many_async(conn, jobs)
        pool = await self._async_pool()
        async with pool.connection() as pooled:
            return await _enqueue.enqueue_many_async(pooled, jobs)

    # -- reading and controlling jobs ---------------------------------------
    #
    # Thin over pgjobs._admin, which holds the statements and the parameter
    # and row handling; each call runs in a transaction of its own on the
    # App's pool (its async twin on the loop's async pool).

    def get_job(self, job_id: int) -> Job:
        """Every field of one job, queued, running or finished.

        Raises:
            JobNotFoundError: no job has this id.
        """
        if self._memory is not None:
            return self._memory_job(job_id)
        with self.connection() as conn:
            return _admin.get_job(conn, job_id).job

    async def get_job_async(self, job_id: int) -> Job:
        """Async twin of `get_job`."""
        if self._memory is not None:
            return self._memory_job(job_id)
        pool = await self._async_pool()
        async with pool.connection() as conn:
            return (await _admin.get_job_async(conn, job_id)).job

    def list_jobs(
        self,
        *,
        status: str | None = None,
        queue: str | None = None,
        task: str | None = None,
        limit: int = 50,
        after: int | None = None,
    ) -> list[Job]:
        """One page of jobs, newest (highest id) first, every filter optional.

        Args:
            status: a stored status (queued, blocked, running, succeeded, failed,
                cancelled) or a derived state (scheduled, retrying).
            queue: only this queue's jobs.
            task: only jobs of this task name.
            limit: the page size, 1 to 10,000.
            after: the id of the last job of the previous page: this page
                starts with the job listed after it (the next smaller id).

        Raises:
            ConfigurationError: an unknown status, or a limit out of range.
        """
        where = _admin.JobFilter(status, queue, task, limit, after)
        with self.connection() as conn:
            return _admin.list_full_jobs(conn, where)

    async def list_jobs_async(
        self,
        *,
        status: str | None = None,
        queue: str | None = None,
        task: str | None = None,
        limit: int = 50,
        after: int | None = None,
    ) -> list[Job]:
        """Async twin of `list_jobs`."""
        where = _admin.JobFilter(status, queue, task, limit, after)
        pool = await self._async_pool()
        async with pool.connection() as conn:
            return await _admin.list_full_jobs_async(conn, where)

    def retry(self, job_id: int) -> None:
        """Put a failed, cancelled or queued job back in line now, with fresh attempts.

        Raises:
            JobNotFoundError: no job has this id.
            InvalidTransitionError: the job is running or succeeded, or an
                active job holds its fingerprint.
        """
        with self.connection() as conn:
            _admin.retry_job(conn, job_id)

    async def retry_async(self, job_id: int) -> None:
        """Async twin of `retry`."""
        pool = await self._async_pool()
        async with pool.connection() as conn:
            await _admin.retry_job_async(conn, job_id)

    def cancel(self, job_id: int, *, by: str | None = None) -> None:
        """Cancel a queued job, or ask the worker running it to stop it.

        A queued job is cancelled at once. A running one is asked to stop:
        its worker hears within milliseconds (a notification; at worst at its
        next heartbeat), cancels an async handler through asyncio and sets
        `current_job().cancelled` for a sync one, which stops where it checks
        (cooperative). Either way the job ends `cancelled`, even if its
        handler returns meanwhile; this call does not wait for that
        (`result` does).

        Args:
            job_id: the job.
            by: who asks, recorded in `cancelled_by` (default: the SQL role).

        Raises:
            JobNotFoundError: no job has this id.
            InvalidTransitionError: the job has finished already.
        """
        with self.connection() as conn:
            _admin.cancel_job(conn, job_id, by)

    async def cancel_async(self, job_id: int, *, by: str | None = None) -> None:
        """Async twin of `cancel`."""
        pool = await self._async_pool()
        async with pool.connection() as conn:
            await _admin.cancel_job_async(conn, job_id, by)

    def result(self, job_id: int, timeout: float | None = None, *, poll: float = 1.0) -> Any:
        """Wait for a job to finish and return its handler's return value.

        Waits on a LISTEN connection of its own, woken by the job's
        completion, and looks again every `poll` seconds in case a
        notification is missed (or, with `pooled=True`, where LISTEN cannot
        work, polls only). A job that finished already is answered at once.

        Args:
            job_id: the job.
            timeout: the most seconds to wait; None waits for ever.
            poll: seconds between looks while waiting.

        Returns:
            The return value as stored in `jobs.result` (JSON: a tuple comes
            back a list); None for a task with keep_result=False.

        Raises:
            JobNotFoundError: no job has this id.
            JobFailedError: the job failed; `.error` is its last error.
            JobCancelledError: the job was cancelled.
            TimeoutError: it did not finish within `timeout` seconds.
        """
        if self._memory is not None:
            return self._memory_result(job_id, timeout)
        deadline = None if timeout is None else time.monotonic() + timeout
        with self.connection() as pooled:
            done, value = _admin.settled(job_id, _admin.result_row(pooled, job_id))
        if done:
            return value
        conn = _connect.connect(self.dsn, _connect.APP, autocommit=True, pooled=self.pooled)
        try:
            if not self.pooled:
                _admin.wait_for(conn, job_id)
            while True:
                done, value = _admin.settled(job_id, _admin.result_row(conn, job_id))
                if done:
                    return value
                pause = poll if deadline is None else min(poll, deadline - time.monotonic())
                if pause <= 0:
                    raise _admin.timed_out(job_id, timeout)
                if self.pooled:
                    time.sleep(pause)
                    continue
                for notify in conn.notifies(timeout=pause):
                    if notify.payload == str(job_id):
                        break
        finally:
            with contextlib.suppress(psycopg.Error):
                if not self.pooled and not conn.closed:
                    _admin.unwait(conn, job_id)
            conn.close()

    async def result_async(
        self,
        job_id: int,
        timeout: float | None = None,  # noqa: ASYNC109 - the twin of result()'s, by contract
        *,
        poll: float = 1.0,
    ) -> Any:
        """Async twin of `result`."""
        if self._memory is not None:
            return self._memory_result(job_id, timeout)
        deadline = None if timeout is None else time.monotonic() + timeout
        pool = await self._async_pool()
        async with pool.connection() as pooled:
            done, value = _admin.settled(job_id, await _admin.result_row_async(pooled, job_id))
        if done:
            return value
        conn = await _connect.connect_async(
            self.dsn, _connect.APP, autocommit=True, pooled=self.pooled
        )
        try:
            if not self.pooled:
                await _admin.wait_for_async(conn, job_id)
            while True:
                row = await _admin.result_row_async(conn, job_id)
                done, value = _admin.settled(job_id, row)
                if done:
                    return value
                pause = poll if deadline is None else min(poll, deadline - time.monotonic())
                if pause <= 0:
                    raise _admin.timed_out(job_id, timeout)
                if self.pooled:
                    await asyncio.sleep(pause)
                    continue
                async for notify in conn.notifies(timeout=pause):
                    if notify.payload == str(job_id):
                        break
        finally:
            with contextlib.suppress(psycopg.Error):
                if not self.pooled and not conn.closed:
                    await _admin.unwait_async(conn, job_id)
            await conn.close()

    def _memory_job(self, job_id: int) -> Job:
        found = self._memory.get(job_id) if self._memory is not None else None
        if found is None:
            raise JobNotFoundError(f"no job with id {job_id} in memory (pgjobs.testing.in_memory)")
        return found.job()

    def _memory_result(self, job_id: int, timeout: float | None) -> Any:
        # In memory nothing runs but drain(): a job not finished yet would
        # never finish while this waits, so it is a timeout at once.
        row = self._memory.result_row(job_id) if self._memory is not None else None
        done, value = _admin.settled(job_id, row)
        if not done:
            raise _admin.timed_out(job_id, timeout)
        return value

    # -- pools -------------------------------------------------------------

    def connection(self) -> Any:
        """A pooled connection as a context manager: commits on success, rolls back on error."""
        return self._sync_pool().connection()

    def _sync_pool(self) -> ConnectionPool[psycopg.Connection[Any]]:
        with self._lock:
            if self._pool is None:
                pool = _connect.pool(
                    self.dsn,
                    _connect.APP,
                    min_size=1,
                    max_size=self.pool_max_size,
                    pooled=self.pooled,
                )
                try:
                    pool.open(wait=True, timeout=10)
                except PoolTimeout:
                    pool.close()
                    raise DatabaseUnavailableError(self._why_unreachable()) from None
                self._pool = pool
            return self._pool

    async def _async_pool(self) -> AsyncConnectionPool[Any]:
        loop = asyncio.get_running_loop()
        pool = self._async_pools.get(loop)
        if pool is None:
            pool = _connect.async_pool(
                self.dsn,
                _connect.APP,
                min_size=1,
                max_size=self.pool_max_size,
                pooled=self.pooled,
            )
            try:
                await pool.open(wait=True, timeout=10)
            except PoolTimeout:
                await pool.close()
                raise DatabaseUnavailableError(self._why_unreachable()) from None
            self._async_pools[loop] = pool
        return pool

    def _why_unreachable(self) -> str:
        try:
            _connect.connect(self.dsn, _connect.APP, connect_timeout=5, pooled=self.pooled).close()
        except psycopg.Error as exc:
            return _dsn.connect_error_message(self.dsn, exc)
        return _dsn.connect_error_message(self.dsn, TimeoutError("timed out opening the pool"))

    def close(self) -> None:
        """Close the sync pool (async pools close with `aclose`)."""
        with self._lock:
            if self._pool is not None:
                self._pool.close()
                self._pool = None

    async def aclose(self) -> None:
        """Close every pool this App opened."""
        self.close()
        pools, self._async_pools = self._async_pools, {}
        for pool in pools.values():
            await pool.close()


#: The default `idle_in_transaction_timeout` of a transactional task, in seconds.
DEFAULT_IDLE_IN_TRANSACTION_TIMEOUT = 60.0
# PostgreSQL's idle_in_transaction_session_timeout is an int of milliseconds.
_MAX_IDLE_IN_TRANSACTION_TIMEOUT = 2_147_483.0


def _idle_timeout(transactional: bool, seconds: float | None) -> float:
    """A task's `idle_in_transaction_timeout`, checked; the default when not given.

    Raises:
        ConfigurationError: given without `transactional=True`, or not a
            number of seconds PostgreSQL can take (0, which would turn the
            limit off, is refused).
    """
    if seconds is None:
        return DEFAULT_IDLE_IN_TRANSACTION_TIMEOUT
    if not transactional:
        raise ConfigurationError(
            "idle_in_transaction_timeout only applies to transactional=True tasks "
            "(the transaction it bounds); pass transactional=True or leave it out"
        )
    if (
        isinstance(seconds, bool)
        or not isinstance(seconds, int | float)
        or not 0.001 <= seconds <= _MAX_IDLE_IN_TRANSACTION_TIMEOUT
    ):
        raise ConfigurationError(
            "idle_in_transaction_timeout must be a number of seconds from 0.001 to "
            f"{_MAX_IDLE_IN_TRANSACTION_TIMEOUT:.0f}, got {seconds!r}; a transactional "
            "handler's transaction always has a limit"
        )
    return float(seconds)


def resolve_task_name(registered: Iterable[str], name: str) -> str:
    """The registered task name that `name` stands for: itself, or the one it abbreviates.

    A default task name is `module.qualname`, which is long to type at a
    command line. A short name stands for the one registered name that ends
    with it after a dot: its last dotted part (`send_welcome` for
    `myapp.jobs.send_welcome`), its qualname (`Mailer.send` for
    `myapp.jobs.Mailer.send`), or a longer tail. An exact match always wins, then a
    name that a pattern (`reports.*`) serves, stored as it is given.

    Args:
        registered: the App's task names (`app.tasks`).
        name: the name as given.

    Returns:
        The full registered name, under which the job is stored.

    Raises:
        UnknownTaskError: no registered name is or ends with `name`.
        AmbiguousTaskError: more than one registered name ends with `name`.
    """
    names = list(registered)
    if _routing.route(names, name) is not None:
        return name  # its own name, or one that a pattern ("reports.*") serves
    matches = sorted(n for n in names if n.endswith("." + name))
    if len(matches) == 1:
        return matches[0]
    if matches:
        raise AmbiguousTaskError(name, matches)
    raise UnknownTaskError(name, names)
