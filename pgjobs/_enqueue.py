"""Writing jobs: the query parameters (pure), and running them on any supported connection.

Every write here runs on the connection it is given, inside whatever
transaction that connection has open. At commit the job exists and idle
workers are woken; at rollback it never existed and nobody was woken.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg.rows import tuple_row

from pgjobs import _sql
from pgjobs._options import EnqueueOptions
from pgjobs._serde import dump_json
from pgjobs.errors import ConfigurationError, DuplicateJobError


@dataclass(frozen=True, slots=True)
class JobSpec:
    """One job ready to be written: its task, JSON arguments and options."""

    task: str
    args_json: str
    options: EnqueueOptions


def single_params(spec: JobSpec) -> dict[str, Any]:
    """Parameters for enqueue.sql."""
    opts = spec.options
    return {
        "task": spec.task,
        "args": spec.args_json,
        "queue": opts.queue,
        "priority": int(opts.priority),
        "run_at": opts.run_at,
        "delay": opts.delay,
        "fingerprint": opts.fingerprint,
        "max_attempts": opts.max_attempts,
        "meta": dump_json(opts.meta, "meta"),
    }


def many_params(specs: Sequence[JobSpec]) -> dict[str, Any]:
    """Parameters for enqueue_many.sql: one array per column."""
    # One pass, and the options of jobs made by the same task with the same
    # defaults (the usual bulk case) are converted once, not once per job:
    # this runs for every job of a bulk enqueue.
    tasks: list[str] = []
    args: list[str] = []
    columns: list[tuple[Any, ...]] = []
    last: EnqueueOptions | None = None
    row: tuple[Any, ...] = ()
    for spec in specs:
        tasks.append(spec.task)
        args.append(spec.args_json)
        opts = spec.options
        if opts is not last:
            last = opts
            row = (
                opts.queue,
                int(opts.priority),
                opts.run_at,
                float(opts.delay or 0),
                opts.fingerprint,
                opts.max_attempts,
                dump_json(opts.meta, "meta") if opts.meta else None,
            )
        columns.append(row)
    queues, priorities, run_ats, delays, fingerprints, max_attempts, metas = (
        (list(column) for column in zip(*columns, strict=True))
        if columns
        else ([], [], [], [], [], [], [])
    )
    return {
        "tasks": tasks,
        "args": args,
        "queues": queues,
        "priorities": priorities,
        "run_ats": run_ats,
        "delays": delays,
        "fingerprints": fingerprints,
        "max_attempts": max_attempts,
        "metas": metas,
    }


def _is_sqlalchemy(conn: object) -> bool:
    return type(conn).__module__.startswith("sqlalchemy")


def _is_async_sqlalchemy(conn: object) -> bool:
    return type(conn).__module__.startswith("sqlalchemy.ext.asyncio")


def _unsupported(conn: object, wanted: str) -> ConfigurationError:
    kind = f"{type(conn).__module__}.{type(conn).__qualname__}"
    if isinstance(conn, psycopg.AsyncConnection) or _is_async_sqlalchemy(conn):
        return ConfigurationError(f"{kind} is asynchronous; use enqueue_async() with it")
    if isinstance(conn, psycopg.Connection) or _is_sqlalchemy(conn):
        return ConfigurationError(f"{kind} is synchronous; use enqueue() with it")
    return ConfigurationError(
        f"cannot enqueue on a {kind}; pass a {wanted} psycopg connection "
        "or a SQLAlchemy Session/Connection"
    )


def run_sync(conn: object, query: str, params: dict[str, Any]) -> list[tuple[Any, ...]]:
    """Run a named query on a caller's sync connection, in its transaction."""
    if isinstance(conn, psycopg.Connection):
        with conn.cursor(row_factory=tuple_row) as cur:
            cur.execute(_sql.psycopg(query), params)
            return cur.fetchall()
    if _is_sqlalchemy(conn) and not _is_async_sqlalchemy(conn):
        from sqlalchemy import text

        result = conn.execute(text(_sql.text(query)), params)  # type: ignore[attr-defined]
        return [tuple(row) for row in result]
    raise _unsupported(conn, "sync")


async def run_async(conn: object, query: str, params: dict[str, Any]) -> list[tuple[Any, ...]]:
    """Run a named query on a caller's async connection, in its transaction."""
    if isinstance(conn, psycopg.AsyncConnection):
        async with conn.cursor(row_factory=tuple_row) as cur:
            await cur.execute(_sql.psycopg(query), params)
            return await cur.fetchall()
    if _is_async_sqlalchemy(conn):
        from sqlalchemy import text

        result = await conn.execute(text(_sql.text(query)), params)  # type: ignore[attr-defined]
        return [tuple(row) for row in result]
    raise _unsupported(conn, "async")


def _new_id(rows: list[tuple[Any, ...]]) -> int | None:
    return int(rows[0][0]) if rows and rows[0][0] is not None else None


def after_conflict(spec: JobSpec, rows: list[tuple[Any, ...]]) -> int | None:
    """Finish a fingerprint conflict: raise, or return the existing job's id."""
    existing = _new_id(rows)
    if spec.options.on_conflict == "return":
        return existing
    assert spec.options.fingerprint is not None
    raise DuplicateJobError(spec.options.fingerprint, existing)


def enqueue_sync(conn: object, spec: JobSpec) -> int | None:
    """Write one job on a caller's sync connection; see the module docstring for visibility.

    Returns:
        The new job's id; on a fingerprint conflict, None (on_conflict="skip")
        or the existing job's id (on_conflict="return").
    """
    new_id = _new_id(run_sync(conn, "enqueue", single_params(spec)))
    if new_id is not None or spec.options.on_conflict == "skip":
        return new_id
    fingerprint = {"fingerprint": spec.options.fingerprint}
    return after_conflict(spec, run_sync(conn, "find_active_fingerprint", fingerprint))


async def enqueue_async(conn: object, spec: JobSpec) -> int | None:
    """Async twin of `enqueue_sync`."""
    new_id = _new_id(await run_async(conn, "enqueue", single_params(spec)))
    if new_id is not None or spec.options.on_conflict == "skip":
        return new_id
    fingerprint = {"fingerprint": spec.options.fingerprint}
    return after_conflict(spec, await run_async(conn, "find_active_fingerprint", fingerprint))


def enqueue_many_sync(conn: object, specs: Sequence[JobSpec]) -> list[int]:
    """Write many jobs in one round trip; returns the ids created (duplicates skipped)."""
    if not specs:
        return []
    return [int(r[0]) for r in run_sync(conn, "enqueue_many", many_params(specs))]


async def enqueue_many_async(conn: object, specs: Sequence[JobSpec]) -> list[int]:
    """Async twin of `enqueue_many_sync`."""
    if not specs:
        return []
    return [int(r[0]) for r in await run_async(conn, "enqueue_many", many_params(specs))]
