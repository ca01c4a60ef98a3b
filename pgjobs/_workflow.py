"""Chains and groups: several jobs written at once, linked by `depends_on`, in one transaction.

`chain(a, b, c)` makes b depend on a and c on b; `group([...]).then(cb)`
makes cb depend on every member. They are written in one transaction: the
caller's with `conn=`, else one of the App's pooled connections. A job must
exist before another can name it, so the links are written one job after
the other (enqueue_blocked.sql), and a group's members, which depend on
nothing, in one bulk statement first.

What to write, in which order, is a plan (a generator that yields the next
jobs and is sent their ids), shared by `enqueue` and `enqueue_async`, which
only do the writing.
"""

from __future__ import annotations

import weakref
from collections.abc import Generator, Iterable, Sequence
from dataclasses import replace
from typing import Any, Protocol

from pgjobs import _enqueue
from pgjobs._enqueue import AnyConn, JobSpec, new_spec
from pgjobs.errors import ConfigurationError


class App(Protocol):
    """What a workflow needs of an App (a Protocol: pgjobs._app imports this module)."""

    def task_for(self, name: str) -> Any: ...
    def connection(self) -> Any: ...
    def _in_memory(self) -> bool: ...
    async def _async_pool(self) -> Any: ...


#: Every App made in this process, to find the one that knows a workflow's tasks.
APPS: weakref.WeakSet[Any] = weakref.WeakSet()


def _checked(jobs: Iterable[object], what: str) -> list[JobSpec]:
    given = list(jobs)
    if not given:
        raise ConfigurationError(
            f"{what} is empty: give it at least one job, such as task.job(...)"
        )
    specs: list[JobSpec] = []
    for spec in given:
        if not isinstance(spec, JobSpec):
            raise ConfigurationError(
                f"{what} takes jobs made by task.job(...) or app.job(...), got {spec!r}"
            )
        specs.append(spec)
        if spec.options.fingerprint is not None:
            raise ConfigurationError(
                f"{what} cannot hold a job with a fingerprint (task {spec.task!r}): a "
                "duplicate would be skipped and leave its dependents nothing to wait for"
            )
    return specs


def _after(spec: JobSpec, parents: Sequence[int]) -> JobSpec:
    """`spec`, also depending on `parents` (after any depends_on of its own)."""
    own = spec.options.depends_on or ()
    return new_spec(spec.task, spec.args_json, replace(spec.options, depends_on=(*own, *parents)))


def _owner(specs: Sequence[JobSpec], app: App | None) -> App:
    if app is not None:
        return app
    apps: list[App] = [a for a in list(APPS) if all(a.task_for(s.task) is not None for s in specs)]
    if len(apps) != 1:
        raise ConfigurationError(
            "cannot tell which App's database to write this workflow to "
            f"({'no App' if not apps else f'{len(apps)} Apps'} registered all of its tasks); "
            "pass conn= (your transaction) or app="
        )
    return apps[0]


def _written(job_id: int | None) -> int:
    # Only a fingerprint conflict writes no job, and _checked refuses fingerprints.
    if job_id is None:
        raise RuntimeError("a workflow job without a fingerprint was not written")
    return job_id


#: A workflow's plan: yields the jobs to write next (one, or many without
#: links between them), is sent their ids, and returns every id in order.
Plan = Generator[list[JobSpec], list[int], list[int]]


def _write(conn: AnyConn, plan: Plan) -> list[int]:
    try:
        batch = next(plan)
        while True:
            if len(batch) == 1:
                ids = [_written(_enqueue.enqueue_sync(conn, batch[0]))]
            else:
                ids = _enqueue.enqueue_many_sync(conn, batch)
            batch = plan.send(ids)
    except StopIteration as done:
        return list(done.value)


async def _write_async(conn: AnyConn, plan: Plan) -> list[int]:
    try:
        batch = next(plan)
        while True:
            if len(batch) == 1:
                ids = [_written(await _enqueue.enqueue_async(conn, batch[0]))]
            else:
                ids = await _enqueue.enqueue_many_async(conn, batch)
            batch = plan.send(ids)
    except StopIteration as done:
        return list(done.value)


class _Workflow:
    """What chain and group share: the jobs to write, in order (`_plan`), and the writing."""

    def _plan(self) -> Plan:
        raise NotImplementedError

    def _specs(self) -> list[JobSpec]:
        raise NotImplementedError

    def _pool_owner(self, app: App | None) -> App:
        owner = _owner(self._specs(), app)
        if owner._in_memory():
            raise ConfigurationError(
                "chains and groups are not supported in memory (pgjobs.testing.in_memory): "
                "test a workflow against the database, with pgjobs.testing.drain"
            )
        return owner

    def enqueue(self, conn: AnyConn | None = None, *, app: App | None = None) -> list[int]:
        """Write every job in one transaction; returns their ids, in the order given.

        Args:
            conn: a psycopg Connection or a SQLAlchemy Session/Connection: the
                jobs are written in its open transaction (visible at commit,
                gone at rollback). Left out: one of the App's pooled
                connections, in a transaction of its own.
            app: the App whose pool to use without `conn`; left out, the one
                App of this process that registered every task of the workflow.

        Raises:
            ConfigurationError: no conn and no single App to write with.
        """
        if conn is not None:
            return _write(conn, self._plan())
        with self._pool_owner(app).connection() as pooled:  # commits at the end, or rolls back
            return _write(pooled, self._plan())

    async def enqueue_async(
        self, conn: AnyConn | None = None, *, app: App | None = None
    ) -> list[int]:
        """Async twin of `enqueue`: `conn` is a psycopg AsyncConnection or a SQLAlchemy
        AsyncSession/AsyncConnection, and without it the App's async pool is used.

        Raises:
            ConfigurationError: no conn and no single App to write with.
        """
        if conn is not None:
            return await _write_async(conn, self._plan())
        pool = await self._pool_owner(app)._async_pool()
        async with pool.connection() as pooled:  # commits at the end, or rolls back
            return await _write_async(pooled, self._plan())


class Chain(_Workflow):
    """Jobs that run one after the other: each waits for the one before it to succeed."""

    def __init__(self, jobs: Sequence[JobSpec]) -> None:
        self.jobs = _checked(jobs, "a chain")

    def _specs(self) -> list[JobSpec]:
        return self.jobs

    def _plan(self) -> Plan:
        ids: list[int] = []
        for spec in self.jobs:
            ids += yield [_after(spec, ids[-1:]) if ids else spec]
        return ids

    def __repr__(self) -> str:
        return f"<pgjobs.chain of {len(self.jobs)}: {' -> '.join(s.task for s in self.jobs)}>"


class Group(_Workflow):
    """Jobs that may run at once; `then(job)` runs one more after all have succeeded."""

    def __init__(self, jobs: Iterable[JobSpec], callback: JobSpec | None = None) -> None:
        self.jobs = _checked(jobs, "a group")
        self.callback = None if callback is None else _checked([callback], "then()")[0]

    def then(self, job: JobSpec) -> Group:
        """This group, with `job` to run once every member has succeeded (its callback)."""
        if self.callback is not None:
            raise ConfigurationError(
                "this group has a callback already; chain(...) a job after the callback instead"
            )
        return Group(self.jobs, job)

    def _specs(self) -> list[JobSpec]:
        return self.jobs if self.callback is None else [*self.jobs, self.callback]

    def _plan(self) -> Plan:
        ids = list((yield self.jobs))
        if len(ids) != len(self.jobs):  # only a fingerprint skips one, and they are refused
            raise RuntimeError("a group member without a fingerprint was not written")
        if self.callback is not None:
            ids += yield [_after(self.callback, ids)]
        return ids

    def __repr__(self) -> str:
        then = f" then {self.callback.task}" if self.callback else ""
        return f"<pgjobs.group of {len(self.jobs)}{then}>"


def chain(*jobs: JobSpec) -> Chain:
    """Jobs that run one after another: `chain(a.job(...), b.job(), c.job()).enqueue()`.

    Each job depends on the one before it (`depends_on`): it runs once that
    one has succeeded, reads its result with
    `current_job().parent_results()`, and is cancelled if it fails or is
    cancelled.

    Raises:
        ConfigurationError: no jobs, or a job that is not a JobSpec or has a fingerprint.
    """
    return Chain(jobs)


def group(jobs: Iterable[JobSpec]) -> Group:
    """Jobs that may run at once: `group([a.job(i) for i in ids]).then(cb.job()).enqueue()`.

    Raises:
        ConfigurationError: no jobs, or a job that is not a JobSpec or has a fingerprint.
    """
    return Group(jobs)


__all__ = ["APPS", "Chain", "Group", "chain", "group"]
