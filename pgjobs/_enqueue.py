"""Writing jobs: the query parameters (pure), and running them on any supported connection.

Every write here runs on the connection it is given, inside whatever
transaction that connection has open. At commit the job exists and idle
workers are woken; at rollback it never existed and nobody was woken.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeAlias, cast

import psycopg
from psycopg import pq
from psycopg.rows import dict_row

from pgjobs import _rows, _sql, _trace
from pgjobs._dependency import always_ids, parent_ids
from pgjobs._options import EnqueueOptions
from pgjobs._serde import dump_json
from pgjobs.errors import ConfigurationError, DuplicateJobError

if TYPE_CHECKING:
    # Only for the aliases below: importing pgjobs does not import SQLAlchemy.
    import sqlalchemy
    import sqlalchemy.ext.asyncio
    import sqlalchemy.orm

#: The connections a job can be written on, in their open transaction (`conn=`).
SyncConn: TypeAlias = (
    "psycopg.Connection[Any] | sqlalchemy.Connection | sqlalchemy.orm.Session"
    " | sqlalchemy.orm.scoped_session[Any]"
)
AsyncConn: TypeAlias = (
    "psycopg.AsyncConnection[Any] | sqlalchemy.ext.asyncio.AsyncConnection"
    " | sqlalchemy.ext.asyncio.AsyncSession | sqlalchemy.ext.asyncio.async_scoped_session[Any]"
)
#: Either kind: the enqueue functions check at run time that it fits the call.
AnyConn: TypeAlias = "SyncConn | AsyncConn"


@dataclass(frozen=True, slots=True)
class JobSpec:
    """One job ready to be written: its task, JSON arguments and options."""

    task: str
    args_json: str
    options: EnqueueOptions


# A frozen dataclass's __init__ sets each field through object.__setattr__:
# 0.6 us of the time it takes to make a job (1.36 against 0.73 us measured
# with timeit, on a day the whole job took 6.5 us), and a bulk enqueue makes
# one per job. new_spec fills the same slots through their own descriptors.
_new_object = object.__new__
_set_task, _set_args_json, _set_options = (
    cast(Any, vars(JobSpec)[name]).__set__ for name in ("task", "args_json", "options")
)


def new_spec(task: str, args_json: str, options: EnqueueOptions) -> JobSpec:
    """`JobSpec(task, args_json, options)`, made faster; the result is the same."""
    spec: JobSpec = _new_object(JobSpec)
    _set_task(spec, task)
    _set_args_json(spec, args_json)
    _set_options(spec, options)
    return spec


def single_query(spec: JobSpec) -> tuple[str, dict[str, Any]]:
    """The named query that writes one job, and its parameters.

    A job with a fingerprint takes enqueue_fingerprinted.sql, whose
    ON CONFLICT makes the insert speculative; one without takes the plain
    INSERT of enqueue.sql.
    """
    opts = spec.options
    params = {
        "task": spec.task,
        "args": spec.args_json,
        "queue": opts.queue,
        "priority": int(opts.priority),
        "run_at": opts.run_at,
        "delay": opts.delay,
        "max_attempts": opts.max_attempts,
        "meta": dump_json(opts.meta, "meta"),
        "timeout": opts.timeout,
        "key": opts.key,
    }
    if opts.depends_on is not None:
        # A job that waits for others (options() refuses a fingerprint with it).
        params["depends_on"] = parent_ids(opts.depends_on)
        params["always"] = always_ids(opts.depends_on)
        return "enqueue_blocked", params
    if opts.fingerprint is None:
        return "enqueue", params
    params["fingerprint"] = opts.fingerprint
    return "enqueue_fingerprinted", params


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
                opts.timeout,
                opts.key,
            )
        columns.append(row)
    queues, priorities, run_ats, delays, fingerprints, max_attempts, metas, timeouts, keys = (
        (list(column) for column in zip(*columns, strict=True))
        if columns
        else ([], [], [], [], [], [], [], [], [])
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
        "timeouts": timeouts,
        "keys": keys,
    }


# -- bulk enqueue by COPY ---------------------------------------------------------
#
# A batch without fingerprints goes in by COPY on a psycopg connection. The
# rows are written as COPY text, built by string formatting in batches of
# _COPY_CHUNK: the server parses a row of text as fast as a binary one, and
# the client spends 1.0 us on a whole line, where building the row tuples for
# binary COPY took 2.0 us before psycopg even adapted them. Sending each chunk
# as it is built lets the server insert one while the next is formatted. The
# INSERT ... FROM unnest(...) of enqueue_many.sql costs more again: its nine
# parameter arrays take longer to build, send and parse than the rows take to
# insert. COPY has no ON CONFLICT and no pipeline mode, so a batch with a
# fingerprint, one on a connection in pipeline mode, and any batch on
# SQLAlchemy take the INSERT.

_COPY = _sql.text("enqueue_copy")
# A batch whose jobs are all due now leaves run_at out (see the file).
_COPY_DUE_NOW = _sql.text("enqueue_copy_due_now")
_COPY_CHUNK = 2000

# COPY text needs these four escaped; everything else is taken as it is.
_COPY_SPECIAL = re.compile(r"[\\\n\r\t]")
_COPY_ESCAPES = {"\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _copy_text(value: str) -> str:
    """`value` as a COPY text field."""
    if _COPY_SPECIAL.search(value) is None:  # the usual case: JSON escapes its own
        return value
    return _COPY_SPECIAL.sub(lambda m: _COPY_ESCAPES[m.group()], value)


def _copyable(
    conn: psycopg.Connection[Any] | psycopg.AsyncConnection[Any], specs: Sequence[JobSpec]
) -> bool:
    # COPY has no ON CONFLICT, and cannot run in pipeline mode.
    if conn.pgconn.pipeline_status != pq.PipelineStatus.OFF:
        return False
    return all(spec.options.fingerprint is None for spec in specs)


def _all_due_now(specs: Sequence[JobSpec]) -> bool:
    """Whether no job has a run_at or a delay, so the COPY can leave run_at out."""
    last: EnqueueOptions | None = None
    for spec in specs:
        opts = spec.options
        if opts is not last:
            last = opts
            if opts.run_at is not None or opts.delay:
                return False
    return True


def copy_begin_params(specs: Sequence[JobSpec]) -> dict[str, Any]:
    """Parameters for enqueue_copy_begin.sql: per queue, when its first job is due."""
    earliest: dict[str, Any] = {}
    least: dict[str, float] = {}
    last: EnqueueOptions | None = None
    for spec in specs:
        opts = spec.options
        if opts is last:
            continue
        last = opts
        queue = opts.queue
        earliest.setdefault(queue, None)
        least.setdefault(queue, float("inf"))
        if opts.run_at is not None:
            if earliest[queue] is None or opts.run_at < earliest[queue]:
                earliest[queue] = opts.run_at
        else:
            least[queue] = min(least[queue], float(opts.delay or 0))
    queues = list(earliest)
    return {
        "count": len(specs),
        "queues": queues,
        "earliest_run_ats": [earliest[q] for q in queues],
        "least_delays": [None if least[q] == float("inf") else least[q] for q in queues],
    }


def copy_chunks(
    specs: Sequence[JobSpec],
    ids: Sequence[int],
    now: dt.datetime | None,
    chunk: int = _COPY_CHUNK,
) -> Iterator[str]:
    """The COPY text, `chunk` rows at a time: each job's run_at is its explicit
    time, else `now` plus its delay; with `now` None the rows have no run_at
    (for _COPY_DUE_NOW)."""
    tasks: dict[str, str] = {}
    last: EnqueueOptions | None = None
    tail = ""
    lines: list[str] = []
    for job_id, spec in zip(ids, specs, strict=True):
        opts = spec.options
        if opts is not last:
            # The columns after args, converted once per run of jobs that
            # share options (the usual bulk case: one task's defaults).
            last = opts
            run_at = ""
            if now is not None:
                at = opts.run_at
                if at is None:
                    at = now + dt.timedelta(seconds=opts.delay) if opts.delay else now
                run_at = f"{at.isoformat()}\t"
            meta = dump_json(opts.meta, "meta") if opts.meta else "{}"
            timeout = "\\N" if opts.timeout is None else repr(float(opts.timeout))
            key = "\\N" if opts.key is None else _copy_text(opts.key)
            tail = (
                f"{_copy_text(opts.queue)}\t{int(opts.priority)}\t{run_at}"
                f"{opts.max_attempts}\t{_copy_text(meta)}\t{timeout}\t{key}\n"
            )
        task = tasks.get(spec.task)
        if task is None:
            task = tasks[spec.task] = _copy_text(spec.task)
        lines.append(f"{job_id}\t{task}\t{_copy_text(spec.args_json)}\t{tail}")
        if len(lines) == chunk:
            yield "".join(lines)
            lines.clear()
    if lines:
        yield "".join(lines)


def _copy_sync(conn: psycopg.Connection[Any], specs: Sequence[JobSpec]) -> list[int]:
    # Two statements: on an autocommit connection they need a transaction of
    # their own, or the wake-ups would be delivered before the rows exist.
    block = conn.transaction() if conn.autocommit else contextlib.nullcontext()
    with block, conn.cursor(row_factory=dict_row) as cur:
        cur.execute(_sql.psycopg("enqueue_copy_begin"), copy_begin_params(specs))
        (begun,) = cur.fetchall()  # one row: the reserved ids, and the clock
        ids, now = begun["ids"], begun["now"]
        due_now = _all_due_now(specs)
        with cur.copy(_COPY_DUE_NOW if due_now else _COPY) as copy:
            for text in copy_chunks(specs, ids, None if due_now else now):
                copy.write(text)
    return list(ids)


async def _copy_async(conn: psycopg.AsyncConnection[Any], specs: Sequence[JobSpec]) -> list[int]:
    block = conn.transaction() if conn.autocommit else contextlib.nullcontext()
    async with block, conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(_sql.psycopg("enqueue_copy_begin"), copy_begin_params(specs))
        (begun,) = await cur.fetchall()  # one row: the reserved ids, and the clock
        ids, now = begun["ids"], begun["now"]
        due_now = _all_due_now(specs)
        async with cur.copy(_COPY_DUE_NOW if due_now else _COPY) as copy:
            for text in copy_chunks(specs, ids, None if due_now else now):
                await copy.write(text)
    return list(ids)


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


# Every statement run here returns job ids, in a column named `id`: it is
# read by name, found once per result (a bulk INSERT returns a row per job).
_ID = _rows.column_row("id")


def run_sync(conn: object, query: str, params: dict[str, Any]) -> list[Any]:
    """Run a named query on a caller's sync connection, in its transaction; its `id`s."""
    if isinstance(conn, psycopg.Connection):
        with conn.cursor(row_factory=_ID) as cur:
            cur.execute(_sql.psycopg(query), params)
            return cur.fetchall()
    if _is_sqlalchemy(conn) and not _is_async_sqlalchemy(conn):
        from sqlalchemy import text

        result = conn.execute(text(_sql.sqlalchemy(query)), params)  # type: ignore[attr-defined]
        return list(result.scalars("id"))
    raise _unsupported(conn, "sync")


async def run_async(conn: object, query: str, params: dict[str, Any]) -> list[Any]:
    """Run a named query on a caller's async connection, in its transaction; its `id`s."""
    if isinstance(conn, psycopg.AsyncConnection):
        async with conn.cursor(row_factory=_ID) as cur:
            await cur.execute(_sql.psycopg(query), params)
            return await cur.fetchall()
    if _is_async_sqlalchemy(conn):
        from sqlalchemy import text

        result = await conn.execute(text(_sql.sqlalchemy(query)), params)  # type: ignore[attr-defined]
        return list(result.scalars("id"))
    raise _unsupported(conn, "async")


def _new_id(ids: list[Any]) -> int | None:
    return int(ids[0]) if ids and ids[0] is not None else None


def after_conflict(spec: JobSpec, ids: list[Any]) -> int | None:
    """Finish a fingerprint conflict: raise, or return the existing job's id."""
    existing = _new_id(ids)
    if spec.options.on_conflict == "return":
        return existing
    fingerprint = spec.options.fingerprint
    if fingerprint is None:  # only the fingerprint index can conflict
        raise RuntimeError("a job without a fingerprint conflicted with an active job")
    raise DuplicateJobError(fingerprint, existing)


def stamp(specs: Sequence[JobSpec], carrier: dict[str, str] | None) -> Sequence[JobSpec]:
    """`specs` with the trace context and the inherited correlation id in their meta.

    Jobs that share options still share them after (the bulk paths convert
    each options object once), and with nothing to add `specs` come back as
    they are.
    """
    if carrier is None and _trace.current() is None:
        return specs
    done: dict[int, EnqueueOptions] = {}
    out: list[JobSpec] = []
    for spec in specs:
        opts = spec.options
        new = done.get(id(opts))
        if new is None:
            new = done[id(opts)] = _trace.stamped(opts, carrier)
        out.append(spec if new is opts else new_spec(spec.task, spec.args_json, new))
    return out


# The four writers below are every way a job is written: each one stamps its
# jobs (trace context, inherited correlation id) and, while tracing is on
# (pgjobs/_trace.py), writes them inside a PRODUCER span.


def enqueue_sync(conn: AnyConn, spec: JobSpec) -> int | None:
    """Write one job on a caller's sync connection; see the module docstring for visibility.

    Returns:
        The new job's id; on a fingerprint conflict, None (on_conflict="skip")
        or the existing job's id (on_conflict="return").
    """
    tracer = _trace.tracer()
    if tracer is None:
        return _enqueue_sync(conn, stamp((spec,), None)[0])
    with _trace.sending(tracer, (spec.options.queue,), 1) as send:
        job_id = _enqueue_sync(conn, stamp((spec,), send.carrier)[0])
        send.sent(job_id)
        return job_id


def _enqueue_sync(conn: AnyConn, spec: JobSpec) -> int | None:
    new_id = _new_id(run_sync(conn, *single_query(spec)))
    if new_id is not None or spec.options.on_conflict == "skip":
        return new_id
    fingerprint = {"fingerprint": spec.options.fingerprint}
    return after_conflict(spec, run_sync(conn, "find_active_fingerprint", fingerprint))


async def enqueue_async(conn: AnyConn, spec: JobSpec) -> int | None:
    """Async twin of `enqueue_sync`."""
    tracer = _trace.tracer()
    if tracer is None:
        return await _enqueue_async(conn, stamp((spec,), None)[0])
    with _trace.sending(tracer, (spec.options.queue,), 1) as send:
        job_id = await _enqueue_async(conn, stamp((spec,), send.carrier)[0])
        send.sent(job_id)
        return job_id


async def _enqueue_async(conn: AnyConn, spec: JobSpec) -> int | None:
    new_id = _new_id(await run_async(conn, *single_query(spec)))
    if new_id is not None or spec.options.on_conflict == "skip":
        return new_id
    fingerprint = {"fingerprint": spec.options.fingerprint}
    return after_conflict(spec, await run_async(conn, "find_active_fingerprint", fingerprint))


def enqueue_many_sync(conn: AnyConn, specs: Sequence[JobSpec]) -> list[int]:
    """Write many jobs in one or two statements; returns the ids created (duplicates skipped)."""
    if not specs:
        return []
    tracer = _trace.tracer()
    if tracer is None:
        return _enqueue_many_sync(conn, stamp(specs, None))
    with _trace.sending(tracer, _queues(specs), len(specs)) as send:
        return _enqueue_many_sync(conn, stamp(specs, send.carrier))


def _has_parents(specs: Sequence[JobSpec]) -> bool:
    """Whether a job of `specs` waits for others: those are written one by one."""
    return any(spec.options.depends_on is not None for spec in specs)


def _enqueue_many_sync(conn: AnyConn, specs: Sequence[JobSpec]) -> list[int]:
    if _has_parents(specs):
        # enqueue_blocked.sql writes one job: its parents are checked and locked first.
        return [i for i in (_enqueue_sync(conn, spec) for spec in specs) if i is not None]
    if isinstance(conn, psycopg.Connection) and _copyable(conn, specs):
        return _copy_sync(conn, specs)
    return [int(i) for i in run_sync(conn, "enqueue_many", many_params(specs))]


async def enqueue_many_async(conn: AnyConn, specs: Sequence[JobSpec]) -> list[int]:
    """Async twin of `enqueue_many_sync`."""
    if not specs:
        return []
    tracer = _trace.tracer()
    if tracer is None:
        return await _enqueue_many_async(conn, stamp(specs, None))
    with _trace.sending(tracer, _queues(specs), len(specs)) as send:
        return await _enqueue_many_async(conn, stamp(specs, send.carrier))


async def _enqueue_many_async(conn: AnyConn, specs: Sequence[JobSpec]) -> list[int]:
    if _has_parents(specs):
        ids = [await _enqueue_async(conn, spec) for spec in specs]
        return [i for i in ids if i is not None]
    if isinstance(conn, psycopg.AsyncConnection) and _copyable(conn, specs):
        return await _copy_async(conn, specs)
    return [int(i) for i in await run_async(conn, "enqueue_many", many_params(specs))]


def _queues(specs: Sequence[JobSpec]) -> list[str]:
    """The queues of `specs`, once per run of shared options (the usual bulk case)."""
    queues: list[str] = []
    last: EnqueueOptions | None = None
    for spec in specs:
        if spec.options is not last:
            last = spec.options
            queues.append(last.queue)
    return queues
