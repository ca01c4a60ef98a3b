"""What the dashboard reads and writes, on one autocommit connection per call.

Nothing here counts the whole jobs table on a large database. Active jobs
(queued, running) are counted exactly through the partial indexes, whose size
follows the backlog. Finished jobs are counted exactly only while the table is
small (SMALL_TABLE_BYTES); beyond that the planner's estimate is shown,
flagged as such. An estimate below ESTIMATE_FLOOR is shown as "<1,000": the
planner's statistics cannot tell a few jobs from none (a queue that never had
a job can be estimated at 7).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg.rows import dict_row

from pgjobs import _admin, _migrate, _sql, _window
from pgjobs._names import (
    APP_NAME_LEADER,
    LEADER_LOCK_CLASSID,
    LEADER_LOCK_OBJID,
    pid_from_application_name,
)
from pgjobs._queue import LIMITS, QueueSettings
from pgjobs.errors import InvalidTransitionError, JobNotFoundError
from pgjobs.web import _chart
from pgjobs.web._db import AsyncConn

#: Below this size on disk, counting pgjobs.jobs exactly is cheap enough for
#: every refresh (a few thousand pages); above it, counts are estimates.
SMALL_TABLE_BYTES = 16 * 1024 * 1024

#: The most jobs a bounded count counts before it says "N+".
COUNT_CAP = 10_000

#: Below this, a planner estimate says only "fewer than this".
ESTIMATE_FLOOR = 1_000


async def _all(
    conn: AsyncConn, name: str, params: dict[str, Any] | None = None
) -> list[dict[str, Any]]:
    # Never prepared, so never planned generically: see pgjobs/_admin.py, _rows.
    # Rows by column name, whatever the connection's own row factory.
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(_sql.psycopg(name, "pgjobs.web"), params or {}, prepare=False)
        return await cur.fetchall()


async def _one(
    conn: AsyncConn, name: str, params: dict[str, Any] | None = None
) -> dict[str, Any] | None:
    rows = await _all(conn, name, params)
    return rows[0] if rows else None


# -- sizes and counts ------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Count:
    """A number of jobs: exact, at least `value` (capped), or a planner estimate."""

    value: int
    kind: str = "exact"  # "exact", "at_least", "estimate" or "below" (fewer than value)

    @classmethod
    def estimated(cls, value: int) -> Count:
        """A planner estimate: "≈value", or "<ESTIMATE_FLOOR" when it is smaller than that."""
        if value < ESTIMATE_FLOOR:
            return cls(ESTIMATE_FLOOR, "below")
        return cls(value, "estimate")

    def as_json(self) -> dict[str, Any]:
        """The API's form."""
        return {"value": self.value, "kind": self.kind}

    def __str__(self) -> str:
        text = f"{self.value:,}"
        if self.kind == "at_least":
            return f"{text}+"
        if self.kind == "estimate":
            return f"≈{text}"
        if self.kind == "below":
            return f"<{text}"
        return text


async def table_is_small(conn: AsyncConn) -> bool:
    """Whether pgjobs.jobs is small enough to count exactly."""
    row = await _one(conn, "table_size")
    return row is not None and int(row["bytes"]) <= SMALL_TABLE_BYTES


async def estimate(
    conn: AsyncConn, *, status: str | None, queue: str | None, task: str | None
) -> int:
    """The planner's estimate of the jobs matching the filters (derived states as queued)."""
    stored = status if status in _STORED else ("queued" if status else None)
    row = await _one(conn, "estimate_jobs", {"status": stored, "queue": queue, "task": task})
    plan = row["QUERY PLAN"] if row else None
    if isinstance(plan, str):
        plan = json.loads(plan)
    try:
        return int(plan[0]["Plan"]["Plan Rows"]) if plan else 0
    except (KeyError, IndexError, TypeError, ValueError):
        return 0


_STORED = ("queued", "blocked", "running", "succeeded", "failed", "cancelled")


async def count_jobs(conn: AsyncConn, where: _admin.JobFilter) -> Count:
    """How many jobs match: exact up to COUNT_CAP on a small table, else an estimate."""
    if await table_is_small(conn):
        params = {**where.params(), "cap": COUNT_CAP + 1}
        params.pop("limit")
        params.pop("before_id")
        row = await _one(conn, "count_jobs_bounded", params)
        value = int(row["jobs"]) if row else 0
        if value > COUNT_CAP:
            return Count(COUNT_CAP, "at_least")
        return Count(value)
    value = await estimate(conn, status=where.status, queue=where.queue, task=where.task)
    return Count.estimated(value)


# -- overview --------------------------------------------------------------


@dataclass(slots=True)
class QueueRow:
    """One queue on the overview and queues pages."""

    name: str
    paused: bool = False
    available: int = 0
    scheduled: int = 0
    running: int = 0
    oldest_available_seconds: float | None = None
    succeeded: Count = field(default_factory=lambda: Count(0))
    failed: Count = field(default_factory=lambda: Count(0))
    cancelled: Count = field(default_factory=lambda: Count(0))
    #: Its limits (pgjobs.queues; README, "Flow control"): None for none.
    limits: QueueSettings | None = None

    def as_json(self) -> dict[str, Any]:
        """The API's form."""
        limits = self.limits or QueueSettings(self.name)
        return {
            "name": self.name,
            "paused": self.paused,
            "available": self.available,
            "scheduled": self.scheduled,
            "running": self.running,
            "oldest_available_seconds": self.oldest_available_seconds,
            "succeeded": self.succeeded.as_json(),
            "failed": self.failed.as_json(),
            "cancelled": self.cancelled.as_json(),
            **{name: getattr(limits, name) for name in LIMITS},
        }


async def queues(conn: AsyncConn) -> list[QueueRow]:
    """Every known queue with its counts (see the module docstring for exactness)."""
    rows: dict[str, QueueRow] = {}

    def row(name: str) -> QueueRow:
        if name not in rows:
            rows[name] = QueueRow(name)
        return rows[name]

    for r in await _all(conn, "queue_settings"):
        q = row(r["name"])
        q.paused = bool(r["paused"])
        q.limits = _settings(r)
    for r in await _all(conn, "queue_active"):
        q = row(r["queue"])
        q.available, q.scheduled, q.running = (
            int(r["available"]),
            int(r["scheduled"]),
            int(r["running"]),
        )
        q.oldest_available_seconds = r["oldest_available_seconds"]
    if await table_is_small(conn):
        for r in await _all(conn, "queue_finished_exact"):
            q = row(r["queue"])
            q.succeeded, q.failed, q.cancelled = (
                Count(int(r["succeeded"])),
                Count(int(r["failed"])),
                Count(int(r["cancelled"])),
            )
    else:
        for r in await _all(conn, "queue_names"):
            if r["queue"] is not None:
                row(r["queue"])
        for q in rows.values():
            for status in ("succeeded", "failed", "cancelled"):
                value = await estimate(conn, status=status, queue=q.name, task=None)
                setattr(q, status, Count.estimated(value))
    return sorted(rows.values(), key=lambda q: q.name)


async def throughput(
    conn: AsyncConn,
    rng: _chart.Range | None = None,
    *,
    queue: str | None = None,
    task: str | None = None,
) -> list[_chart.Bucket]:
    """Succeeded, failed and cancelled jobs per bar of `rng` (the last hour by
    default), oldest first, one entry per bar (zeros too), from the per-minute
    counts (migration 0019): the cost follows the range, not the traffic."""
    rng = rng or _chart.RANGES[_chart.DEFAULT_RANGE]
    params = {"step": rng.step, "buckets": rng.buckets, "queue": queue, "task": task}
    rows = await _all(conn, "throughput", params)
    return [
        _chart.Bucket(r["at"], int(r["succeeded"]), int(r["failed"]), int(r["cancelled"]))
        for r in rows
    ]


@dataclass(frozen=True, slots=True)
class Leader:
    """Who leads: `known` is False when it cannot be told (no privilege to read pg_locks)."""

    known: bool
    backend_pid: int | None = None
    worker_pid: int | None = None
    worker_id: int | None = None
    host: str | None = None

    def as_json(self) -> dict[str, Any]:
        """The API's form."""
        return {
            "known": self.known,
            "elected": self.backend_pid is not None,
            "backend_pid": self.backend_pid,
            "worker_pid": self.worker_pid,
            "worker_id": self.worker_id,
            "host": self.host,
        }

    def __str__(self) -> str:
        if not self.known:
            return "unknown"
        if self.backend_pid is None:
            return "none elected"
        if self.worker_id is not None:
            return f"worker {self.worker_id} ({self.host}, pid {self.worker_pid})"
        if self.worker_pid is not None:
            return f"pid {self.worker_pid}"
        return f"backend pid {self.backend_pid}"


async def leader(conn: AsyncConn, workers_: list[dict[str, Any]]) -> Leader:
    """The current leader, matched to a worker row when possible."""
    params = {"classid": LEADER_LOCK_CLASSID, "objid": LEADER_LOCK_OBJID}
    try:
        row = await _one(conn, "leader", params)
    except psycopg.errors.InsufficientPrivilege:
        return Leader(known=False)
    if row is None:
        return Leader(known=True)
    pid = pid_from_application_name(row["application_name"], APP_NAME_LEADER)
    if pid is None:
        return Leader(known=True, backend_pid=int(row["backend_pid"]))
    for w in workers_:
        if w["pid"] == pid:
            return Leader(True, int(row["backend_pid"]), pid, int(w["id"]), str(w["host"]))
    return Leader(True, int(row["backend_pid"]), pid)


async def workers(conn: AsyncConn) -> list[dict[str, Any]]:
    """Registered workers, freshest first, with the ids of the jobs they run."""
    return list(await _all(conn, "workers"))


# -- jobs ------------------------------------------------------------------


async def jobs_by_fingerprint(
    conn: AsyncConn, fingerprint: str, *, limit: int, before_id: int | None
) -> list[_admin.JobSummary]:
    """Jobs with this fingerprint, newest first."""
    rows = await _all(
        conn,
        "jobs_by_fingerprint",
        {"fingerprint": fingerprint, "limit": limit, "before_id": before_id},
    )
    return [_admin.JobSummary.from_row(r) for r in rows]


async def jobs_in_derived_state(
    conn: AsyncConn, where: _admin.JobFilter
) -> list[_admin.JobSummary]:
    """A page of scheduled or retrying jobs, read through the fetch index."""
    params = where.params()
    rows = await _all(conn, f"jobs_list_{params.pop('state')}", params)
    return [_admin.JobSummary.from_row(r) for r in rows]


async def state_counts(conn: AsyncConn, *, queue: str | None, task: str | None) -> dict[str, Count]:
    """How many jobs are in each state (the jobs list's tabs), of a queue and task if given.

    Live states are counted exactly; finished ones as `count_jobs` counts them.
    """
    row = await _one(conn, "state_counts_live", {"queue": queue, "task": task}) or {}
    counts = {name: Count(int(row.get(name) or 0)) for name in _LIVE_STATES}
    for status in ("succeeded", "failed", "cancelled"):
        where = _admin.JobFilter(status=status, queue=queue, task=task)
        counts[status] = await count_jobs(conn, where)
    return counts


_LIVE_STATES = ("queued", "scheduled", "retrying", "running", "blocked")


async def jobs_search(conn: AsyncConn, params: dict[str, Any]) -> list[_admin.JobSummary]:
    """A page of jobs searched in args or errors, or sorted oldest first or by priority."""
    rows = await _all(conn, "jobs_search", params)
    return [_admin.JobSummary.from_row(r) for r in rows]


async def delete_job(conn: AsyncConn, job_id: int) -> None:
    """Delete a job that is not running.

    Raises:
        JobNotFoundError: no job has this id.
        InvalidTransitionError: the job is running.
    """
    row = await _one(conn, "job_delete", {"id": job_id})
    if row is not None and row["deleted_id"] is not None:
        return
    if row is None or row["status"] is None:
        raise JobNotFoundError(f"no job with id {job_id}")
    raise InvalidTransitionError(
        f"job {job_id} is running, and its worker would still record its outcome; "
        "delete it once it has finished"
    )


async def delete_finished(
    conn: AsyncConn, *, status: str, queue: str | None, task: str | None
) -> int:
    """Delete every finished job of `status` (of a queue and task if given); returns how many."""
    row = await _one(conn, "jobs_delete_finished", {"status": status, "queue": queue, "task": task})
    return int(row["deleted"]) if row else 0


async def task_names(conn: AsyncConn) -> list[str]:
    """Common task names from the planner's statistics."""
    return sorted({r["task"] for r in await _all(conn, "known_tasks") if r["task"]})


# -- queues and schedules --------------------------------------------------


def _settings(r: dict[str, Any]) -> QueueSettings:
    return QueueSettings(r["name"], *(r[name] for name in LIMITS))


async def queue_known(conn: AsyncConn, queue: str, declared: set[str]) -> bool:
    """Whether `queue` is declared by the App (`declared`) or known to the database."""
    if queue in declared:
        return True
    row = await _one(conn, "queue_known", {"queue": queue})
    return bool(row and row["known"])


async def queue_limits(conn: AsyncConn, queue: str) -> QueueSettings:
    """A queue's limits as pgjobs.queues holds them (none for a queue without a row)."""
    for r in await _all(conn, "queue_settings"):
        if r["name"] == queue:
            return _settings(r)
    return QueueSettings(queue)


async def set_limits(conn: AsyncConn, limits: QueueSettings) -> None:
    """Write a queue's limits (checked already: pgjobs/_queue.py), keeping its paused flag."""
    await _all(
        conn,
        "queue_set_limits",
        {"queue": limits.name, **{name: getattr(limits, name) for name in LIMITS}},
    )


async def set_paused(conn: AsyncConn, queue: str, paused: bool) -> None:
    """Pause or resume a queue (creating its settings row if needed)."""
    await _all(conn, "queue_set_paused", {"queue": queue, "paused": paused})


#: How many finished jobs after a job the job page reads for its dependents.
WORKFLOW_WINDOW = 5_000


@dataclass(frozen=True, slots=True)
class Workflow:
    """A job's parents and dependents (pgjobs/web/sql/job_workflow.sql).

    Attributes:
        parents: id, task, status, queue, and `waited_for` (it has not succeeded yet).
        dependents: id, task, status, queue.
        searched_to: the last finished job read for dependents, when the
            history holds more after this job than were read; None: all.
    """

    parents: list[dict[str, Any]]
    dependents: list[dict[str, Any]]
    searched_to: int | None


async def workflow(conn: AsyncConn, job_id: int, window: int = WORKFLOW_WINDOW) -> Workflow:
    """The parents and dependents of a job, with their states."""
    rows = await _all(conn, "job_workflow", {"id": job_id, "window": window})
    searched = [r["searched_to"] for r in rows if r["relation"] == "searched"]
    return Workflow(
        parents=[r for r in rows if r["relation"] == "parent"],
        dependents=[r for r in rows if r["relation"] == "dependent"],
        searched_to=searched[0] if searched else None,
    )


async def breakers(conn: AsyncConn) -> list[dict[str, Any]]:
    """Every circuit breaker and its state (pgjobs.task_breakers), by task."""
    return await _all(conn, "breakers_list")


def breaker_json(row: dict[str, Any]) -> dict[str, Any]:
    """One circuit breaker in the API's form."""
    return {
        "task": row["task"],
        "state": row["state"],
        "failures": row["failures"],
        "cooldown": row["cooldown"],
        "consecutive_failures": row["consecutive_failures"],
        "opened_at": row["opened_at"],
        "retry_at": row["retry_at"],
        "retry_in_seconds": row["retry_in"],
        "trial_job_id": row["trial_job_id"],
        "updated_at": row["updated_at"],
    }


async def schedules(conn: AsyncConn) -> list[dict[str, Any]] | None:
    """Every schedule, or None when this database has no schedules table."""
    row = await _one(conn, "schedules_present")
    if not row or not row["present"]:
        return None
    found = list(await _all(conn, "schedules"))
    runs: dict[str, list[dict[str, Any]]] = {}
    for r in await _all(conn, "schedule_runs", {"runs": SCHEDULE_RUNS}):
        runs.setdefault(r["name"], []).append(r)
    for schedule in found:
        schedule["runs"] = runs.get(schedule["name"], [])
    return found


#: How many of each schedule's recent jobs the schedules page shows.
SCHEDULE_RUNS = 5


async def set_schedule_paused(conn: AsyncConn, name: str, paused: bool) -> None:
    """Pause or resume a schedule (resumed: it fires from now on, missing no tick twice).

    Raises:
        JobNotFoundError: no schedule has this name.
    """
    row = await _one(conn, "schedule_set_paused", {"name": name, "paused": paused})
    if row is None:
        raise JobNotFoundError(f"no schedule named {name!r}; see the schedules page")


async def run_schedule_now(conn: AsyncConn, name: str, who: str) -> int | None:
    """Enqueue one job of a schedule now; returns its id (None: fingerprint held).

    Raises:
        JobNotFoundError: no schedule has this name (or no schedules table).
    """
    present = await _one(conn, "schedules_present")
    row = None
    if present and present["present"]:
        row = await _one(conn, "schedule_run_now", {"name": name, "who": who})
    if row is None:
        raise JobNotFoundError(f"no schedule named {name!r}; see the schedules page")
    return int(row["job_id"]) if row["job_id"] is not None else None


async def schema_revision(conn: AsyncConn) -> str | None:
    """The database's pgjobs schema revision, or None without a schema."""
    return await _migrate.current_revision_async(conn)


async def schema(conn: AsyncConn) -> _window.Schema | None:
    """The database's pgjobs schema revision and the oldest code it works with; None without one."""
    return await _migrate.current_schema_async(conn)
