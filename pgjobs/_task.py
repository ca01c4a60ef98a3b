"""Task: a registered function, with a typed enqueue that keeps its signature."""

from __future__ import annotations

import functools
import inspect
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, ParamSpec, Protocol, TypeVar, Unpack

from pgjobs import _enqueue
from pgjobs._breaker import CircuitBreaker
from pgjobs._enqueue import AnyConn, AsyncConn, JobSpec, SyncConn, new_spec
from pgjobs._options import EnqueueKwargs, EnqueueOptions
from pgjobs._retry import RetryPolicy
from pgjobs._serde import dump_args
from pgjobs.errors import ArgumentsError, ConfigurationError

P = ParamSpec("P")
R = TypeVar("R")


class Binder:
    """`bind_arguments` for one signature, with a fast path for the usual calls.

    A signature without positional-only parameters, *args or **kwargs (most
    task functions) binds with a few set operations; anything else, and every
    call that does not fit, goes through `inspect.Signature.bind`, which also
    words the error. Binding runs for every job of a bulk enqueue, and
    `Signature.bind` alone cost 4.8 us of the 12.8 us it took to make a job.
    """

    __slots__ = ("names", "positional", "required", "signature", "simple")

    def __init__(self, signature: inspect.Signature) -> None:
        params = signature.parameters.values()
        self.signature = signature
        self.simple = all(p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) for p in params)
        self.positional = tuple(p.name for p in params if p.kind is p.POSITIONAL_OR_KEYWORD)
        self.names = frozenset(signature.parameters)
        self.required = frozenset(p.name for p in params if p.default is p.empty)

    def __call__(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
        """The arguments by parameter name; see `bind_arguments`."""
        if self.simple and len(args) <= len(self.positional):
            if args:
                bound = dict(zip(self.positional, args, strict=False))
                if bound.keys() & kwargs.keys():
                    return bind_arguments(self.signature, args, kwargs)  # raises
                bound.update(kwargs)
            else:
                bound = dict(kwargs)
            if bound.keys() <= self.names and self.required <= bound.keys():
                return bound
        return bind_arguments(self.signature, args, kwargs)

    def call(self, stored: dict[str, Any]) -> tuple[tuple[Any, ...], dict[str, Any]]:
        """`(args, kwargs)` for the handler; see `call_arguments`.

        For a simple signature every parameter can be passed by name, so
        stored arguments that name only parameters and every required one
        are the keyword arguments as they are. This runs for every job a
        worker starts; `call_arguments` cost 10% of a no-op drain.
        """
        keys = stored.keys()
        if self.simple and keys <= self.names and self.required <= keys:
            return (), stored
        return call_arguments(self.signature, stored)


def bind_arguments(signature: inspect.Signature, args: Any, kwargs: Any) -> dict[str, Any]:
    """Map a call's arguments to parameter names, as they are stored in `jobs.args`.

    Defaults are not filled in: they are applied when the job runs, with the
    code deployed then.

    Raises:
        ArgumentsError: the arguments do not fit the signature.
    """
    try:
        bound = signature.bind(*args, **kwargs)
    except TypeError as exc:
        raise ArgumentsError(
            f"arguments do not match the task's signature {signature}: {exc}"
        ) from None
    return dict(bound.arguments)


def call_arguments(
    signature: inspect.Signature, stored: dict[str, Any]
) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """Turn stored arguments back into `(args, kwargs)` for the handler (the inverse of bind).

    Raises:
        ArgumentsError: a stored name is not a parameter, or a required one is missing.
    """
    unknown = sorted(set(stored) - set(signature.parameters))
    if unknown:
        raise ArgumentsError(
            f"stored arguments {unknown} are not parameters of {signature}; "
            "the job was enqueued for a different version of the task"
        )
    ordered = {name: stored[name] for name in signature.parameters if name in stored}
    bound = inspect.BoundArguments(signature, ordered)  # type: ignore[arg-type,unused-ignore]
    try:
        signature.bind(*bound.args, **bound.kwargs)
    except TypeError as exc:
        raise ArgumentsError(f"stored arguments do not match {signature}: {exc}") from None
    return bound.args, bound.kwargs


@dataclass(frozen=True, slots=True)
class TaskConfig:
    """How a task runs: the parts of @app.task that are not enqueue defaults."""

    timeout: float | None
    retry: RetryPolicy
    keep_result: bool
    #: Whether its finished jobs go to pgjobs.job_history (False: deleted at once).
    keep_history: bool = True
    #: Whether the handler runs in a transaction that also records its
    #: success (`@app.task(transactional=True)`, pgjobs/worker/_transaction.py).
    transactional: bool = False
    #: Seconds that transaction may sit idle before PostgreSQL ends it
    #: (its idle_in_transaction_session_timeout); used only when transactional.
    idle_in_transaction_timeout: float = 60.0
    #: How many times a job of the task may snooze (raise pgjobs.Snooze).
    max_snoozes: int = 100
    #: Its circuit breaker (`@app.task(circuit_breaker=...)`), None for none.
    circuit_breaker: CircuitBreaker | None = None


class Owner(Protocol):
    """What a Task needs of the App that registered it (the App, without importing it)."""

    max_payload_bytes: int

    def enqueue_spec(self, spec: JobSpec, conn: SyncConn | None = None) -> int | None:
        """Write one prepared job; see `App.enqueue_spec`."""

    async def enqueue_spec_async(self, spec: JobSpec, conn: AsyncConn | None = None) -> int | None:
        """Async twin of `enqueue_spec`."""

    def _in_memory(self) -> bool:
        """Whether enqueues go to pgjobs.testing.in_memory's store; see `App._in_memory`."""


class Task(Generic[P, R]):
    """A function registered with `@app.task`. Calling it runs it here and now;
    `enqueue` queues it for a worker, with the same typed arguments."""

    def __init__(
        self,
        app: Owner,
        fn: Callable[P, R],
        name: str,
        defaults: EnqueueOptions,
        config: TaskConfig,
    ) -> None:
        self.app = app
        self.fn = fn
        self.name = name
        self.defaults = defaults
        self.config = config
        self.is_async = inspect.iscoroutinefunction(fn)
        self.signature = inspect.signature(fn)
        self.bind = Binder(self.signature)
        functools.update_wrapper(self, fn)

    def __repr__(self) -> str:
        return f"<pgjobs.Task {self.name!r} queue={self.defaults.queue!r}>"

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        return self.fn(*args, **kwargs)

    def options(
        self, *, conn: AnyConn | None = None, **options: Unpack[EnqueueKwargs]
    ) -> Call[P, R]:
        """Per-call options, checked now. `conn` enqueues in the caller's transaction.

        Args:
            conn: a psycopg Connection/AsyncConnection or a SQLAlchemy
                Session/Connection (sync or async). The job is written in its
                open transaction: visible at commit, gone at rollback.
            **options: queue, priority, delay, run_at, max_attempts,
                fingerprint, on_conflict, meta, correlation_id (see
                `EnqueueKwargs` in pgjobs._options); those left out keep the
                task's defaults.

        Raises:
            ConfigurationError: an option is out of range.
            TypeError: an option that does not exist.
        """
        return Call(self, self.defaults.merge(options), conn)

    def job(self, *args: P.args, **kwargs: P.kwargs) -> JobSpec:
        """A job for `app.enqueue_many`, with the task's default options."""
        # Not through a Call: this runs for every job of a bulk enqueue.
        return self._make_job(self.defaults, args, kwargs)

    def _make_job(
        self, options: EnqueueOptions, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> JobSpec:
        """The job these arguments make with `options`, checked and serialised."""
        payload = dump_args(self.bind(args, kwargs), max_bytes=self.app.max_payload_bytes)
        return new_spec(self.name, payload, options)

    def enqueue(self, *args: P.args, **kwargs: P.kwargs) -> int | None:
        """Queue a run on the App's pool, in its own transaction; returns the job id."""
        return Call(self, self.defaults, None).enqueue(*args, **kwargs)

    async def enqueue_async(self, *args: P.args, **kwargs: P.kwargs) -> int | None:
        """Async twin of `enqueue`, on the App's async pool."""
        return await Call(self, self.defaults, None).enqueue_async(*args, **kwargs)


class PrefixTask(Task[P, R]):
    """A task registered for a name pattern (`name="reports.*"`): it serves jobs
    enqueued under full names (`app.enqueue("reports.daily", ...)`, or SQL), and
    has no name of its own to enqueue under."""

    def _make_job(
        self, options: EnqueueOptions, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> JobSpec:
        raise ConfigurationError(
            f"{self.name!r} is a pattern, not a task name: a job needs a full name. "
            f"Enqueue by name with app.enqueue('{self.name[:-1]}<name>', {{...}})"
        )


class Call(Generic[P, R]):
    """A task with per-call options applied: `task.options(...)`."""

    __slots__ = ("conn", "options", "task")

    def __init__(self, task: Task[P, R], options: EnqueueOptions, conn: AnyConn | None) -> None:
        self.task = task
        self.options = options
        self.conn = conn

    def job(self, *args: P.args, **kwargs: P.kwargs) -> JobSpec:
        """The job these arguments make, checked and serialised, not yet written."""
        return self.task._make_job(self.options, args, kwargs)

    def enqueue(self, *args: P.args, **kwargs: P.kwargs) -> int | None:
        """Write the job; see `Task.options` for where and what it returns."""
        spec = self.job(*args, **kwargs)
        if self.conn is None or self.task.app._in_memory():
            return self.task.app.enqueue_spec(spec)
        return _enqueue.enqueue_sync(self.conn, spec)

    async def enqueue_async(self, *args: P.args, **kwargs: P.kwargs) -> int | None:
        """Async twin of `enqueue`."""
        spec = self.job(*args, **kwargs)
        if self.conn is None or self.task.app._in_memory():
            return await self.task.app.enqueue_spec_async(spec)
        return await _enqueue.enqueue_async(self.conn, spec)


def task_name(fn: Callable[..., Any]) -> str:
    """The default task name: `module.qualname`, as the worker will import it."""
    module = getattr(fn, "__module__", None)
    qualname = getattr(fn, "__qualname__", None)
    if not module or not qualname or "<" in qualname:
        raise ConfigurationError(
            f"cannot derive a task name for {fn!r}; pass @app.task(name='...')"
        )
    if module == "__main__":
        # A script run directly: the worker will import it under its real name.
        spec = getattr(sys.modules.get("__main__"), "__spec__", None)
        if spec is None or not spec.name:
            raise ConfigurationError(
                f"cannot derive a stable task name for {qualname!r} defined in a script run "
                "as __main__ (a worker would import it under another name); "
                "pass @app.task(name='...')"
            )
        module = spec.name
    return f"{module}.{qualname}"
