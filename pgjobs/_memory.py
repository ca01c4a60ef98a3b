"""The store of `pgjobs.testing.in_memory`: jobs kept in a dict instead of written.

While an App is in memory (`App._memory` holds a MemoryQueue), every way it
enqueues (`enqueue`, `enqueue_many`, `task.enqueue`, `options(conn=...)`,
sync and async) lands here instead of in PostgreSQL, and `get_job` and
`result` read from here. Nothing is transactional: a job is "written" when
the call returns, whatever happens to the caller's transaction, and `conn=`
is not used at all. `pgjobs.testing.drain` runs the jobs (pgjobs/testing/_memory.py)
with the worker's own executor.

This module is the core's part: the App asks it, so it must not import the
worker. `active` counts the Apps in memory in this process, so that an App
that is not in memory refuses to write to a database while one is (a test
that forgot an App would otherwise need a server).
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
import threading
from dataclasses import dataclass, field
from typing import Any

from pgjobs._enqueue import JobSpec, stamp
from pgjobs._job import Job, Status
from pgjobs.errors import ConfigurationError, DuplicateJobError

#: How many Apps are in memory now, in this process (see the module docstring).
active = 0

_ACTIVE = (Status.QUEUED, Status.RUNNING)


def now() -> dt.datetime:
    """The store's clock: the time of day in UTC, as PostgreSQL's now() gives it."""
    return dt.datetime.now(dt.UTC)


@dataclass
class MemoryJob:
    """One job of the store, with the columns of pgjobs.jobs that a run reads or writes."""

    id: int
    task: str
    queue: str
    args: dict[str, Any]
    priority: int
    run_at: dt.datetime
    max_attempts: int
    meta: dict[str, Any]
    fingerprint: str | None
    timeout: float | None
    created_at: dt.datetime
    status: Status = Status.QUEUED
    attempts: int = 0
    started_at: dt.datetime | None = None
    finished_at: dt.datetime | None = None
    errors: list[dict[str, Any]] = field(default_factory=list)
    result: Any = None
    checkpoint: Any = None
    snoozes: int = 0
    progress: dict[str, Any] | None = None

    def job(self) -> Job:
        """As `app.get_job` returns a job read from the database."""
        return Job(
            id=self.id,
            queue=self.queue,
            task=self.task,
            args=json.loads(json.dumps(self.args)),
            priority=self.priority,
            status=self.status,
            run_at=self.run_at,
            attempts=self.attempts,
            max_attempts=self.max_attempts,
            fingerprint=self.fingerprint,
            worker_id=None,
            started_at=self.started_at,
            created_at=self.created_at,
            finished_at=self.finished_at,
            errors=list(self.errors),
            result=self.result,
            meta=dict(self.meta),
            snoozes=self.snoozes,
            progress=self.progress,
            checkpoint=self.checkpoint,
            timeout=self.timeout,
        )


class MemoryQueue:
    """The jobs an App in memory enqueued, by id, ids counting from 1."""

    def __init__(self) -> None:
        self.jobs: dict[int, MemoryJob] = {}
        self._ids = itertools.count(1)
        # Handlers of sync tasks run in threads and may enqueue.
        self._lock = threading.Lock()

    def add(self, spec: JobSpec, *, skip_duplicates: bool = False) -> int | None:
        """Keep one job, as enqueue.sql would write it; see `Task.options` for fingerprints.

        Args:
            skip_duplicates: a job whose fingerprint an active job holds is
                skipped whatever its on_conflict (as `enqueue_many` does).
        """
        (spec,) = stamp((spec,), None)  # the inherited correlation id, as a real enqueue
        opts = spec.options
        if opts.depends_on is not None:
            raise ConfigurationError(
                "depends_on is not supported in memory (pgjobs.testing.in_memory): its "
                "unblocking and cancelling happen in PostgreSQL; test a workflow against the "
                "database, with pgjobs.testing.drain"
            )
        at = now()
        with self._lock:
            if opts.fingerprint is not None:
                holder = next(
                    (
                        j.id
                        for j in self.jobs.values()
                        if j.fingerprint == opts.fingerprint and j.status in _ACTIVE
                    ),
                    None,
                )
                if holder is not None:
                    if skip_duplicates or opts.on_conflict == "skip":
                        return None
                    if opts.on_conflict == "return":
                        return holder
                    raise DuplicateJobError(opts.fingerprint, holder)
            if opts.run_at is not None:
                run_at = opts.run_at.astimezone(dt.UTC)
            elif opts.delay is not None:
                run_at = at + dt.timedelta(seconds=opts.delay)
            else:
                run_at = at
            job_id = next(self._ids)
            self.jobs[job_id] = MemoryJob(
                id=job_id,
                task=spec.task,
                queue=opts.queue,
                args=json.loads(spec.args_json),
                priority=int(opts.priority),
                run_at=run_at,
                max_attempts=opts.max_attempts,
                meta=dict(opts.meta),
                fingerprint=opts.fingerprint,
                timeout=opts.timeout,
                created_at=at,
            )
            return job_id

    def add_many(self, specs: list[JobSpec]) -> list[int]:
        """Keep many jobs; the ids of those kept, in order (duplicates skipped)."""
        ids = [self.add(spec, skip_duplicates=True) for spec in specs]
        return [i for i in ids if i is not None]

    def get(self, job_id: int) -> MemoryJob | None:
        """The job with this id, if the store holds it."""
        return self.jobs.get(job_id)

    def due(self, queues: tuple[str, ...] | None) -> MemoryJob | None:
        """The job a claim would take next: due, queued, by priority, run_at and id."""
        at = now()
        with self._lock:
            candidates = [
                j
                for j in self.jobs.values()
                if j.status == Status.QUEUED
                and j.run_at <= at
                and (queues is None or j.queue in queues)
            ]
        return min(candidates, key=lambda j: (j.priority, j.run_at, j.id), default=None)

    def result_row(self, job_id: int) -> dict[str, Any] | None:
        """What `_admin.settled` reads of a job (result_check.sql's row), or None."""
        job = self.jobs.get(job_id)
        if job is None:
            return None
        return {
            "status": job.status,
            "result": job.result,
            "last_error": job.errors[-1] if job.errors else None,
            "cancelled_by": None,
        }


def refuse_database(app: object) -> ConfigurationError:
    """The error of an App that is not in memory, writing while another App is."""
    return ConfigurationError(
        f"{app!r} is not in memory, but pgjobs.testing.in_memory() is active for another App: "
        "a task of this App was enqueued. Put it in memory too "
        "(with in_memory(app_a), in_memory(app_b): ...), or enqueue through the App in memory"
    )
