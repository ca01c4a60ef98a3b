"""One statement, one round trip: a hot loop's statements on a pool connection in autocommit."""

from __future__ import annotations

import contextlib
from typing import Any, TypeVar

import psycopg
from psycopg.rows import AsyncRowFactory
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from pgjobs import _sql

T = TypeVar("T")


async def fetch_autocommit(
    pool: AsyncConnectionPool[Any],
    query: str,
    params: dict[str, Any],
    row_factory: AsyncRowFactory[T],
) -> list[T]:
    """Run a named query as its own transaction, on a connection of `pool`; return its rows.

    The pool's connections run transactions (BEGIN, statements, COMMIT: three
    round trips for one statement); the claims and the outcomes, on the
    critical path of every job, switch the borrowed connection to autocommit
    for their one statement, which is then one round trip. They share the
    pool with the worker's other short statements instead of keeping
    connections of their own, so an idle worker holds one pool connection.

    The statement is prepared on its first run on each connection, unless the
    pool never prepares (behind a transaction pooler).

    A pool connection that died while idle (a server restart, a terminated
    backend) fails on first use; the pool discards it and the statement is
    tried once more, so the loop does not report an outage that is already
    over. Every statement run here is safe to repeat: a claim whose reply was
    lost is given back by the heartbeat, and completions are fenced. Waiting
    for a connection (PoolTimeout) is not retried: the caller's loop backs off.

    Raises:
        psycopg.OperationalError: the statement failed twice for want of a connection.
        PoolTimeout: no connection within the pool's timeout.
    """
    try:
        return await _fetch_once(pool, query, params, row_factory)
    except PoolTimeout:
        raise
    except (psycopg.OperationalError, psycopg.InterfaceError):
        return await _fetch_once(pool, query, params, row_factory)


async def _fetch_once(
    pool: AsyncConnectionPool[Any],
    query: str,
    params: dict[str, Any],
    row_factory: AsyncRowFactory[T],
) -> list[T]:
    async with pool.connection() as conn:
        # Switching is local (no round trip) while no transaction is open.
        await conn.set_autocommit(True)
        try:
            prepare = None if conn.prepare_threshold is None else True
            async with conn.cursor(row_factory=row_factory) as cur:
                await cur.execute(_sql.psycopg(query), params, prepare=prepare)
                return await cur.fetchall() if cur.description else []
        finally:
            # The pool's other users expect a transaction; a broken connection
            # is discarded by the pool anyway.
            with contextlib.suppress(psycopg.Error):
                await conn.set_autocommit(False)
