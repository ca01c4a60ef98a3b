"""Operator actions on jobs (list, show, retry, cancel, stats, enqueue by name), sync and async.

Every function takes a psycopg connection and runs on it, inside whatever
transaction it has open: a retry or cancel is visible to workers at commit and
undone at rollback. On an autocommit connection each call is its own
transaction. The async twins take an AsyncConnection; both share the
parameter building and row conversion below, which do no I/O.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, Unpack

import psycopg
from psycopg.rows import dict_row

from pgjobs import _enqueue, _sql
from pgjobs._enqueue import JobSpec
from pgjobs._job import Job, Status
from pgjobs._options import EnqueueKwargs, EnqueueOptions
from pgjobs._serde import dump_args
from pgjobs.errors import (
    ArgumentsError,
    ConfigurationError,
    InvalidTransitionError,
    JobCancelledError,
    JobFailedError,
    JobNotFoundError,
    SchemaVersionError,
    UnknownTaskError,
)


class _Registry(Protocol):
    """What `job_spec` needs of an App (a Protocol: pgjobs._app imports this module)."""

    @property
    def tasks(self) -> Mapping[str, Any]: ...
    def task_for(self, name: str) -> Any: ...
    def job(
        self, task: str, args: dict[str, Any] | None = None, **options: Unpack[EnqueueKwargs]
    ) -> JobSpec: ...


#: The states of the pgjobs.job_states view: the stored statuses, plus
#: `retrying` (queued after a failed attempt, waiting out its backoff or due)
#: and `scheduled` (queued with a future run_at, never failed). Filtering on
#: `queued` matches both of those too.
DERIVED_STATES = ("scheduled", "retrying")
STATES = (*(s.value for s in Status), *DERIVED_STATES)

#: The most rows one page of `list_jobs` returns.
MAX_LIMIT = 10_000

_SyncConn = psycopg.Connection[Any]
_AsyncConn = psycopg.AsyncConnection[Any]
_Rows = list[dict[str, Any]]


# -- inputs (pure) ---------------------------------------------------------


@dataclass(frozen=True, slots=True)
class JobFilter:
    """Which jobs `list_jobs` returns: every field is optional, newest first.

    Attributes:
        status: a stored status or a derived state (see STATES).
        queue: only jobs of this queue.
        task: only jobs of this task name.
        limit: the page size, 1 to MAX_LIMIT.
        before_id: only jobs with a smaller id: the last id of the previous page.
    """

    status: str | None = None
    queue: str | None = None
    task: str | None = None
    limit: int = 50
    before_id: int | None = None

    def __post_init__(self) -> None:
        if self.status is not None and self.status not in STATES:
            raise ConfigurationError(
                f"unknown status {self.status!r}; use one of {', '.join(STATES)}"
            )
        if isinstance(self.limit, bool) or not 1 <= self.limit <= MAX_LIMIT:
            raise ConfigurationError(
                f"limit must be from 1 to {MAX_LIMIT}, got {self.limit!r}; "
                "page further with before_id (--before) instead"
            )

    def params(self) -> dict[str, Any]:
        """Parameters for admin_list_jobs.sql."""
        derived = self.status in DERIVED_STATES
        return {
            # A derived state is a queued job: saying so lets the planner use
            # the small partial index of queued jobs instead of walking every
            # row (the view's CASE alone hides that; 576 ms -> ms at 1M rows).
            "status": Status.QUEUED.value if derived else self.status,
            "state": self.status if derived else None,
            "queue": self.queue,
            "task": self.task,
            "limit": self.limit,
            "before_id": self.before_id,
        }


#: Stored statuses a bulk retry may start from.
RETRYABLE = (Status.FAILED.value, Status.CANCELLED.value)


def retry_many_params(
    status: str = "failed", queue: str | None = None, task: str | None = None
) -> dict[str, Any]:
    """Parameters for admin_retry_jobs.sql.

    Raises:
        ConfigurationError: `status` is not one a bulk retry starts from.
    """
    if status not in RETRYABLE:
        raise ConfigurationError(
            f"a bulk retry takes --status failed or cancelled, got {status!r}; "
            "queued jobs are already in line and running ones are still executing"
        )
    return {"status": status, "queue": queue, "task": task}


def cancel_many_params(
    queue: str | None = None, task: str | None = None, by: str | None = None
) -> dict[str, Any]:
    """Parameters for admin_cancel_jobs.sql; `by` names who asked (None: the SQL role).

    Raises:
        ConfigurationError: neither filter is given (that would cancel every queued job).
    """
    if queue is None and task is None:
        raise ConfigurationError(
            "a bulk cancel needs a queue or a task filter, so it cannot empty "
            "every queue by accident; pass --queue Q and/or --task T"
        )
    return {"queue": queue, "task": task, "by": by}


# -- waiting for a result (pure) ---------------------------------------------


def settled(job_id: int, row: Mapping[str, Any] | None) -> tuple[bool, Any]:
    """What a row of result_check.sql says about waiting for `job_id`.

    Returns:
        (True, the handler's return value) for a succeeded job (None when the
        task keeps no result); (False, None) while it is queued or running.

    Raises:
        JobNotFoundError: no such job (or it finished and its task keeps no history).
        JobFailedError: the job failed; it carries the last error.
        JobCancelledError: the job was cancelled.
    """
    if row is None:
        raise JobNotFoundError(
            f"no job with id {job_id} (a job whose task has keep_history=False is "
            "deleted when it finishes, so its result cannot be read); "
            "list jobs with `python -m pgjobs jobs list`"
        )
    status = row["status"]
    if status == Status.SUCCEEDED:
        return True, row["result"]
    if status == Status.FAILED:
        raise JobFailedError(job_id, row["last_error"])
    if status == Status.CANCELLED:
        by = row["cancelled_by"]
        raise JobCancelledError(
            job_id,
            f"job {job_id} was cancelled{f' by {by}' if by else ''}, so it has no result; "
            f"app.retry({job_id}) puts it back in line",
            cancelled_by=by,
        )
    return False, None


def timed_out(job_id: int, timeout: float | None) -> TimeoutError:
    """The error of a wait for `job_id` that ran out of time."""
    return TimeoutError(
        f"job {job_id} did not finish within {timeout} s; it keeps running: "
        "wait again with app.result(), or cancel it with app.cancel()"
    )


def parse_args_json(text: str) -> dict[str, Any]:
    """Task arguments given as JSON text, which must be an object keyed by parameter name.

    Raises:
        ArgumentsError: the text is not JSON, or not a JSON object.
    """
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ArgumentsError(
            f"--args is not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno}); "
            """pass an object such as --args '{"user_id": 42}'"""
        ) from None
    if not isinstance(value, dict):
        raise ArgumentsError(
            f"--args must be a JSON object of arguments by name, got {type(value).__name__}; "
            """for example --args '{"user_id": 42}'"""
        )
    return value


def job_spec(
    task: str,
    args: Mapping[str, Any],
    *,
    app: _Registry | None = None,
    **options: Unpack[EnqueueKwargs],
) -> JobSpec:
    """A job for a task named by string, checked before anything is written.

    Without `app` any name is accepted (like the pgjobs.enqueue SQL function)
    and unset options take pgjobs' defaults. With `app` the name must be one of
    its tasks (or one that a pattern such as `reports.*` serves), the arguments
    must fit its signature, and unset options take the task's defaults. The
    options are those of `Task.options`.

    Raises:
        UnknownTaskError: `app` is given and does not know the name.
        ArgumentsError: the arguments do not fit, or are not storable as JSON.
        ConfigurationError: an option is out of range.
    """
    if not task or len(task) > 255:
        raise ConfigurationError(f"task name must be 1 to 255 characters, got {task!r}")
    if app is None:
        return JobSpec(task, dump_args(dict(args)), EnqueueOptions().merge(options))
    if app.task_for(task) is None:
        # Whatever app.strict says: naming an App asks for the check.
        raise UnknownTaskError(task, list(app.tasks))
    return app.job(task, dict(args), **options)


# -- results (pure) --------------------------------------------------------


@dataclass(frozen=True, slots=True)
class JobSummary:
    """One line of `list_jobs`. `state` is the derived state, `status` the stored one."""

    id: int
    queue: str
    task: str
    state: str
    status: str
    priority: int
    attempts: int
    max_attempts: int
    run_at: dt.datetime
    created_at: dt.datetime
    last_error_type: str | None
    #: The latest current_job().progress() report (done, total, message, at), if any.
    progress: dict[str, Any] | None = None
    #: When the current (or last) attempt started.
    started_at: dt.datetime | None = None
    #: The last error's message (its first 300 characters) and time, on failed
    #: and retrying jobs.
    last_error_message: str | None = None
    last_error_at: str | None = None

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> JobSummary:
        """Build from a row of admin_list_jobs.sql (a column it lacks keeps its default)."""
        return cls(**{name: row[name] for name in cls.__dataclass_fields__ if name in row})


@dataclass(frozen=True, slots=True)
class JobDetail:
    """Every field of one job, and its derived state."""

    job: Job
    state: str

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> JobDetail:
        """Build from a row of admin_get_job.sql."""
        return cls(Job.from_row(dict(row)), str(row["state"]))


@dataclass(frozen=True, slots=True)
class QueueStats:
    """Counts of one queue's jobs by state, from the pgjobs.queue_stats view."""

    queue: str
    available: int
    scheduled: int
    running: int
    succeeded: int
    failed: int
    cancelled: int
    oldest_available_seconds: float | None  # None when nothing is waiting
    paused: bool

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> QueueStats:
        """Build from a row of admin_queue_stats.sql."""
        return cls(**{name: row[name] for name in cls.__dataclass_fields__})


@dataclass(frozen=True, slots=True)
class Stats:
    """The state of the whole queue: per-queue counts and the live workers."""

    queues: list[QueueStats]
    live_workers: int


@dataclass(frozen=True, slots=True)
class BulkResult:
    """How many jobs a bulk retry or cancel changed, per queue."""

    per_queue: dict[str, int] = field(default_factory=dict)

    @property
    def total(self) -> int:
        """Jobs changed in all queues."""
        return sum(self.per_queue.values())

    @classmethod
    def from_rows(cls, rows: _Rows) -> BulkResult:
        """Build from the rows of admin_retry_jobs.sql or admin_cancel_jobs.sql."""
        return cls({str(r["queue"]): int(r["jobs"]) for r in rows})


def _one_job(rows: _Rows, job_id: int) -> JobDetail:
    if not rows:
        raise JobNotFoundError(_not_found(job_id))
    return JobDetail.from_row(rows[0])


def _stats(queues: _Rows, workers: _Rows) -> Stats:
    return Stats([QueueStats.from_row(r) for r in queues], int(workers[0]["live_workers"]))


def _not_found(job_id: int | None) -> str:
    what = f"no job with id {job_id}" if job_id is not None else "no such job"
    return f"{what}; list jobs with `python -m pgjobs jobs list`"


@contextlib.contextmanager
def _mapped_errors(job_id: int | None = None) -> Iterator[None]:
    """Turn the SQL API's errors into pgjobs.errors; also usable around `await`."""
    try:
        yield
    except psycopg.errors.NoDataFound:
        raise JobNotFoundError(_not_found(job_id)) from None
    except psycopg.errors.ObjectNotInPrerequisiteState as exc:
        message = (exc.diag.message_primary or str(exc)).removeprefix("pgjobs: ")
        raise InvalidTransitionError(message) from None
    except psycopg.errors.UniqueViolation:
        # Only a retry can hit the fingerprint index: enqueue skips conflicts.
        raise InvalidTransitionError(
            f"job {job_id} cannot go back in line: an active job holds its fingerprint; "
            "let that job finish or cancel it, then retry"
        ) from None
    except (
        psycopg.errors.UndefinedTable,
        psycopg.errors.UndefinedFunction,
        psycopg.errors.InvalidSchemaName,
        psycopg.errors.UndefinedObject,
    ) as exc:
        raise SchemaVersionError(
            f"the pgjobs schema is missing or out of date ({exc.diag.message_primary}); "
            "run `python -m pgjobs migrate`"
        ) from None


# Admin statements are never prepared (prepare=False). They take optional
# filters, `(:queue IS NULL OR queue = :queue)`, whose best plan depends on
# which are set: once psycopg prepares a statement (after five runs on a
# connection) PostgreSQL may switch it to a generic plan that cannot see the
# values. With 300,000 jobs, listing the running jobs then took 48-67 ms
# instead of 1 ms. Planning each call costs well under a millisecond.


def _rows(conn: _SyncConn, query: str, params: dict[str, Any], job_id: int | None = None) -> _Rows:
    with _mapped_errors(job_id), conn.cursor(row_factory=dict_row) as cur:
        cur.execute(_sql.psycopg(query), params, prepare=False)
        return cur.fetchall()


async def _rows_async(
    conn: _AsyncConn, query: str, params: dict[str, Any], job_id: int | None = None
) -> _Rows:
    with _mapped_errors(job_id):
        async with conn.cursor(row_factory=dict_row) as cur:
            await cur.execute(_sql.psycopg(query), params, prepare=False)
            return await cur.fetchall()


# -- sync ------------------------------------------------------------------


def enqueue(conn: _SyncConn, spec: JobSpec) -> int | None:
    """Write a job built by `job_spec`, as `app.enqueue_spec` does on a connection.

    A job without a fingerprint is one plain INSERT that wakes waiting
    workers of its queue (pgjobs/sql/enqueue.sql); only a job with a
    fingerprint goes through the pgjobs.enqueue SQL function, for its
    ON CONFLICT (pgjobs/sql/enqueue_fingerprinted.sql).

    Returns:
        The new id; None when an active job holds the fingerprint and
        on_conflict is "skip".

    Raises:
        DuplicateJobError: an active job holds the fingerprint (on_conflict "raise").
    """
    with _mapped_errors():
        return _enqueue.enqueue_sync(conn, spec)


def list_jobs(conn: _SyncConn, where: JobFilter | None = None) -> list[JobSummary]:
    """One page of jobs, newest first (see JobFilter)."""
    rows = _rows(conn, "admin_list_jobs", (where or JobFilter()).params())
    return [JobSummary.from_row(r) for r in rows]


def get_job(conn: _SyncConn, job_id: int) -> JobDetail:
    """Every field of one job.

    Raises:
        JobNotFoundError: no job has this id.
    """
    return _one_job(_rows(conn, "admin_get_job", {"id": job_id}), job_id)


def retry_job(conn: _SyncConn, job_id: int) -> None:
    """Put a failed, cancelled or queued job back in line now, with fresh attempts.

    Raises:
        JobNotFoundError: no job has this id.
        InvalidTransitionError: the job is running or succeeded, or an active
            job holds its fingerprint.
    """
    _rows(conn, "admin_retry_job", {"id": job_id}, job_id)


def cancel_job(conn: _SyncConn, job_id: int, by: str | None = None) -> None:
    """Cancel a queued job (scheduled and retrying ones included), or stop a running one.

    A running job is asked to stop: its worker hears of it at once (a
    notification) or at its next heartbeat, and the job ends `cancelled`.
    `by` names who asked (None records the SQL role).

    Raises:
        JobNotFoundError: no job has this id.
        InvalidTransitionError: the job has finished already.
    """
    _rows(conn, "admin_cancel_job", {"id": job_id, "by": by}, job_id)


def retry_jobs(
    conn: _SyncConn, *, status: str = "failed", queue: str | None = None, task: str | None = None
) -> BulkResult:
    """Retry every job in `status` (failed or cancelled) that matches, in one statement.

    A job whose fingerprint an active job holds is skipped; of matching jobs
    that share a fingerprint, only the newest is retried.
    """
    return BulkResult.from_rows(
        _rows(conn, "admin_retry_jobs", retry_many_params(status, queue, task))
    )


def cancel_jobs(
    conn: _SyncConn, *, queue: str | None = None, task: str | None = None, by: str | None = None
) -> BulkResult:
    """Cancel every queued job of a queue and/or task, and stop every running one, at once."""
    params = cancel_many_params(queue, task, by)
    return BulkResult.from_rows(_rows(conn, "admin_cancel_jobs", params))


def list_full_jobs(conn: _SyncConn, where: JobFilter | None = None) -> list[Job]:
    """One page of jobs with every field, newest first (the client API's `list_jobs`)."""
    rows = _rows(conn, "client_list_jobs", (where or JobFilter()).params())
    return [Job.from_row(r) for r in rows]


def result_row(conn: _SyncConn, job_id: int) -> dict[str, Any] | None:
    """What `settled` reads about one job, or None if there is no such job."""
    rows = _rows(conn, "result_check", {"id": job_id}, job_id)
    return rows[0] if rows else None


def stats(conn: _SyncConn, *, stale_after: float = 30.0) -> Stats:
    """Counts per queue and state, and workers heard from within `stale_after` seconds."""
    queues = _rows(conn, "admin_queue_stats", {})
    return _stats(queues, _rows(conn, "admin_live_workers", {"stale_after": stale_after}))


# -- async twins -----------------------------------------------------------


async def enqueue_async(conn: _AsyncConn, spec: JobSpec) -> int | None:
    """Async twin of `enqueue`."""
    with _mapped_errors():
        return await _enqueue.enqueue_async(conn, spec)


async def list_jobs_async(conn: _AsyncConn, where: JobFilter | None = None) -> list[JobSummary]:
    """Async twin of `list_jobs`."""
    rows = await _rows_async(conn, "admin_list_jobs", (where or JobFilter()).params())
    return [JobSummary.from_row(r) for r in rows]


async def get_job_async(conn: _AsyncConn, job_id: int) -> JobDetail:
    """Async twin of `get_job`."""
    return _one_job(await _rows_async(conn, "admin_get_job", {"id": job_id}), job_id)


async def retry_job_async(conn: _AsyncConn, job_id: int) -> None:
    """Async twin of `retry_job`."""
    await _rows_async(conn, "admin_retry_job", {"id": job_id}, job_id)


async def cancel_job_async(conn: _AsyncConn, job_id: int, by: str | None = None) -> None:
    """Async twin of `cancel_job`."""
    await _rows_async(conn, "admin_cancel_job", {"id": job_id, "by": by}, job_id)


async def retry_jobs_async(
    conn: _AsyncConn, *, status: str = "failed", queue: str | None = None, task: str | None = None
) -> BulkResult:
    """Async twin of `retry_jobs`."""
    params = retry_many_params(status, queue, task)
    return BulkResult.from_rows(await _rows_async(conn, "admin_retry_jobs", params))


async def cancel_jobs_async(
    conn: _AsyncConn, *, queue: str | None = None, task: str | None = None, by: str | None = None
) -> BulkResult:
    """Async twin of `cancel_jobs`."""
    params = cancel_many_params(queue, task, by)
    return BulkResult.from_rows(await _rows_async(conn, "admin_cancel_jobs", params))


async def list_full_jobs_async(conn: _AsyncConn, where: JobFilter | None = None) -> list[Job]:
    """Async twin of `list_full_jobs`."""
    rows = await _rows_async(conn, "client_list_jobs", (where or JobFilter()).params())
    return [Job.from_row(r) for r in rows]


async def result_row_async(conn: _AsyncConn, job_id: int) -> dict[str, Any] | None:
    """Async twin of `result_row`."""
    rows = await _rows_async(conn, "result_check", {"id": job_id}, job_id)
    return rows[0] if rows else None


async def stats_async(conn: _AsyncConn, *, stale_after: float = 30.0) -> Stats:
    """Async twin of `stats`."""
    queues = await _rows_async(conn, "admin_queue_stats", {})
    workers = await _rows_async(conn, "admin_live_workers", {"stale_after": stale_after})
    return _stats(queues, workers)


# -- waiting for a result: the registration ------------------------------------


def wait_for(conn: _SyncConn, job_id: int) -> None:
    """On an autocommit connection: register as a waiter for `job_id` and LISTEN.

    Before the first look at the job, so that a completion committed after
    that look is announced on this connection.
    """
    _rows_none(conn, "result_wait", {"id": job_id})
    _rows_none(conn, "listen_done", {})


def unwait(conn: _SyncConn, job_id: int) -> None:
    """Undo `wait_for` (the row; the LISTEN ends with the connection)."""
    _rows_none(conn, "result_unwait", {"id": job_id})


async def wait_for_async(conn: _AsyncConn, job_id: int) -> None:
    """Async twin of `wait_for`."""
    await _rows_none_async(conn, "result_wait", {"id": job_id})
    await _rows_none_async(conn, "listen_done", {})


async def unwait_async(conn: _AsyncConn, job_id: int) -> None:
    """Async twin of `unwait`."""
    await _rows_none_async(conn, "result_unwait", {"id": job_id})


def _rows_none(conn: _SyncConn, query: str, params: dict[str, Any]) -> None:
    with _mapped_errors():
        conn.execute(_sql.psycopg(query), params, prepare=False)


async def _rows_none_async(conn: _AsyncConn, query: str, params: dict[str, Any]) -> None:
    with _mapped_errors():
        await conn.execute(_sql.psycopg(query), params, prepare=False)
