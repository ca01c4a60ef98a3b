"""The job record and its vocabulary: Status and Priority."""

from __future__ import annotations

import datetime as dt
import enum
from dataclasses import dataclass, field
from typing import Any


class Status(enum.StrEnum):
    """A job's stored status (the `pgjobs.job_status` enum)."""

    QUEUED = "queued"
    BLOCKED = "blocked"  # waiting for the jobs it depends on (options(depends_on=...))
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"  # retries exhausted: the dead-letter state
    CANCELLED = "cancelled"


class Priority(enum.IntEnum):
    """Lower runs first."""

    CRITICAL = 0
    HIGH = 1
    NORMAL = 2
    LOW = 3
    BULK = 4


@dataclass(frozen=True, slots=True)
class Job:
    """A row of `pgjobs.jobs`, as read back by the client API."""

    id: int
    queue: str
    task: str
    args: dict[str, Any]
    priority: int
    status: Status
    run_at: dt.datetime
    attempts: int
    max_attempts: int
    fingerprint: str | None
    worker_id: int | None
    started_at: dt.datetime | None
    created_at: dt.datetime
    finished_at: dt.datetime | None
    errors: list[dict[str, Any]] = field(default_factory=list)
    result: Any = None
    meta: dict[str, Any] = field(default_factory=dict)
    #: When a cancel of the running job was asked for (pgjobs.cancel), and by whom.
    cancel_requested_at: dt.datetime | None = None
    cancelled_by: str | None = None
    #: How many times the job snoozed (raised pgjobs.Snooze); not counted in attempts.
    snoozes: int = 0
    #: The latest progress its handler reported: done, total, message, at.
    progress: dict[str, Any] | None = None
    #: What its handler saved for the next attempt (cleared on success).
    checkpoint: Any = None
    #: Its own timeout in seconds (options(timeout=...)); None: its task's.
    timeout: float | None = None
    #: What its queue's key_concurrency counts by (options(key=...)).
    key: str | None = None

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> Job:
        """Build a Job from a dict row of `SELECT * FROM pgjobs.jobs`."""
        values = {name: row[name] for name in cls.__dataclass_fields__ if name in row}
        values["status"] = Status(values["status"])
        return cls(**values)
