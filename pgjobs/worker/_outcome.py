"""What a finished run means for its job: succeed, retry later, or fail (pure)."""

from __future__ import annotations

import datetime as dt
import traceback
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from pgjobs._retry import RetryPolicy

_MAX_MESSAGE = 4_000
_MAX_TRACEBACK = 16_000


@dataclass(frozen=True, slots=True)
class ClaimedJob:
    """A claimed job: the columns of a claim's row (claim.sql), read by name."""

    id: int
    queue: str
    task: str
    args: dict[str, Any]
    priority: int
    attempts: int  # this run's attempt number, counting from 1
    max_attempts: int
    meta: dict[str, Any]
    run_at: dt.datetime  # where the fetcher resumes this queue's search (its position)
    snoozes: int = 0  # how many times it snoozed before this run (pgjobs.Snooze)
    checkpoint: Any = None  # what an earlier attempt saved (current_job().checkpoint)
    timeout: float | None = None  # this job's own timeout (options(timeout=...)), seconds


@dataclass(frozen=True, slots=True)
class Outcome:
    """One row of the completer's batch update (complete.sql)."""

    job_id: int
    attempt: int
    status: str  # 'succeeded', 'queued' (retry), 'failed' or 'cancelled'
    delay: float  # seconds until the retry; 0 unless status is 'queued'
    error: dict[str, Any] | None
    result_json: str | None
    #: A finished job goes to the history (False: deleted; the task keeps no history).
    keep: bool = True
    #: Already committed (a transactional job's success, written in the
    #: handler's transaction) or deliberately not written (that transaction
    #: was fenced): nothing for the completer to do.
    written: bool = False
    #: A snooze: back in line after `delay`, the attempt not counted (status 'queued').
    snooze: bool = False


def succeeded(job: ClaimedJob, result_json: str | None, *, keep: bool = True) -> Outcome:
    """The job ran to completion."""
    return Outcome(job.id, job.attempts, "succeeded", 0.0, None, result_json, keep)


def snoozed(job: ClaimedJob, seconds: float) -> Outcome:
    """The handler raised pgjobs.Snooze: run again in `seconds`, this attempt not counted."""
    return Outcome(job.id, job.attempts, "queued", seconds, None, None, snooze=True)


def cancelled(job: ClaimedJob, *, keep: bool = True) -> Outcome:
    """The job was asked to stop (pgjobs.cancel) and its handler stopped."""
    return Outcome(job.id, job.attempts, "cancelled", 0.0, None, None, keep)


def error_entry(job: ClaimedJob, exc: BaseException) -> dict[str, Any]:
    """The record appended to `jobs.errors` for a failed attempt (the time is added in SQL)."""
    kind = type(exc)
    name = (
        kind.__qualname__
        if kind.__module__ == "builtins"
        else f"{kind.__module__}.{kind.__qualname__}"
    )
    trace = "".join(traceback.format_exception(exc))
    if len(trace) > _MAX_TRACEBACK:
        trace = "…" + trace[-_MAX_TRACEBACK:]
    return {
        "attempt": job.attempts,
        "type": name,
        "message": str(exc)[:_MAX_MESSAGE],
        "traceback": trace,
    }


def failed(
    job: ClaimedJob, exc: BaseException, policy: RetryPolicy | None, *, keep: bool = True
) -> Outcome:
    """The run raised: retry after the policy's delay, or fail if no attempts remain.

    Args:
        job: the claimed job.
        exc: what the handler raised (or the timeout, or the bad-arguments error).
        policy: the task's backoff policy; None for errors that no retry can
            fix (an unknown task, arguments that do not fit).
    """
    entry = error_entry(job, exc)
    if policy is not None and job.attempts < job.max_attempts:
        return Outcome(job.id, job.attempts, "queued", policy.delay(job.attempts), entry, None)
    return Outcome(job.id, job.attempts, "failed", 0.0, entry, None, keep)


def batch_params(worker_id: int, outcomes: list[Outcome]) -> dict[str, Any]:
    """Parameters for complete.sql: parallel arrays, one element per outcome.

    Each array goes as the text of a PostgreSQL array literal, which the
    statement casts to its type. psycopg's list dumper adapts a list
    element by element in Python, with a regular expression per element to
    decide its quoting; for a batch of 190 outcomes that was about 9% of a
    no-op drain's worker CPU, and joining the texts here costs a fraction.
    """
    from pgjobs._serde import dump_json

    return {
        "worker_id": worker_id,
        "ids": _words(o.job_id for o in outcomes),
        "attempts": _words(o.attempt for o in outcomes),
        "statuses": _words(o.status for o in outcomes),
        "delays": _words(float(o.delay) for o in outcomes),
        "errors": _texts(
            None if o.error is None else dump_json(o.error, "error") for o in outcomes
        ),
        "results": _texts(o.result_json for o in outcomes),
        "keeps": _words("t" if o.keep else "f" for o in outcomes),
        "snoozes": _words("t" if o.snooze else "f" for o in outcomes),
    }


def _words(values: Iterable[object]) -> str:
    """The array literal of values whose text needs no quoting: integers, floats, enum labels."""
    return "{" + ",".join(map(str, values)) + "}"


def _texts(values: Iterable[str | None]) -> str:
    """The array literal of texts, each quoted, its backslashes and double quotes escaped."""
    return (
        "{"
        + ",".join(
            "NULL" if v is None else '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
            for v in values
        )
        + "}"
    )
