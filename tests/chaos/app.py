"""The chaos App: handlers that record each run in `test_runs`, in a transaction of their own."""

from __future__ import annotations

import os
import threading
import time

import psycopg

import pgjobs

app = pgjobs.App()

# A handler's side effect can fail while PostgreSQL is down; the job then
# retries. Short constant delays and a generous budget keep "every job ends
# succeeded" about the queue, not about how long an outage lasts.
_RETRY = pgjobs.Constant(seconds=0.3, jitter=0.5)
_local = threading.local()


def _connection(fresh: bool = False) -> psycopg.Connection[tuple[object, ...]]:
    conn: psycopg.Connection[tuple[object, ...]] | None = getattr(_local, "conn", None)
    if fresh or conn is None or conn.closed or conn.broken:
        if conn is not None:
            conn.close()
        conn = psycopg.connect(os.environ["PGJOBS_DSN"], autocommit=True, connect_timeout=5)
        _local.conn = conn
    return conn


def _record(job_key: str, note: str = "") -> None:
    """Insert one `test_runs` row, committed before the handler returns.

    Each job thread keeps a connection. One that the server dropped while it
    sat idle fails on first use; like any careful application, the handler
    then tries once more on a fresh connection (the INSERT did not commit:
    only a commit whose reply was lost could make this a second row).
    A second failure is the job's: it raises, and the job retries later.
    """
    sql = "INSERT INTO test_runs (job_key, pid, note) VALUES (%s, %s, %s)"
    params = (job_key, os.getpid(), note)
    conn = _connection()
    try:
        conn.execute(sql, params)
    except psycopg.OperationalError:
        if not conn.broken:
            raise  # the server answered: not a dropped connection
        _connection(fresh=True).execute(sql, params)


@app.task(name="chaos.record", max_attempts=50, retry=_RETRY)
def record(key: str, work: float = 0.0) -> None:
    """Do `work` seconds of work, then record the run: the side effect the tests count."""
    if work:
        time.sleep(work)
    _record(key)


@app.task(name="chaos.stuck", max_attempts=3, timeout=1.0, retry=pgjobs.Constant(seconds=0.2))
def stuck(key: str, seconds: float) -> None:
    """Record the start, then ignore cancellation for `seconds` (a thread cannot be stopped)."""
    _record(key, "start")
    time.sleep(seconds)
    _record(key, "end")


@app.task(name="chaos.slow_async", max_attempts=2, timeout=0.5, retry=pgjobs.Constant(seconds=0.1))
async def slow_async(key: str, seconds: float) -> None:
    """An async handler that overruns its timeout unless `seconds` is short."""
    import asyncio

    await asyncio.to_thread(_record, key, "start")
    await asyncio.sleep(seconds)
    await asyncio.to_thread(_record, key, "end")


# -- the transactional kill storm (tests/chaos/test_transactional_kills.py) ---
# The same effect, written two ways: in the job's transaction, which also
# records its success, or committed on its own before the handler returns.
# Both write first and then work, so that a kill most often lands after the
# effect and before the success: the window in which a plain task runs twice.


@app.task(name="chaos.effect_tx", transactional=True, max_attempts=50, retry=_RETRY)
async def effect_tx(key: str, work: float = 0.0) -> None:
    """Insert the effect in the job's transaction, then work: committed with the success."""
    import asyncio

    await pgjobs.current_job().conn.execute(
        "INSERT INTO test_runs (job_key, pid, note) VALUES (%s, %s, 'tx')", (key, os.getpid())
    )
    if work:
        await asyncio.sleep(work)


@app.task(name="chaos.effect_plain", max_attempts=50, retry=_RETRY)
async def effect_plain(key: str, work: float = 0.0) -> None:
    """Commit the effect on its own connection, then work: the success is written later."""
    import asyncio

    await asyncio.to_thread(_record, key, "plain")
    if work:
        await asyncio.sleep(work)
