"""The connections the claims and the outcome batches keep: one statement, one round trip."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any, TypeVar

import psycopg
from psycopg.rows import AsyncRowFactory, tuple_row
from psycopg_pool import AsyncConnectionPool

from pgjobs import _connect, _sql
from pgjobs.worker._db import CONNECTION_ERRORS

T = TypeVar("T")


class HotConnection:
    """An autocommit connection that a hot loop (the fetcher, the completer) keeps for itself.

    Borrowing a pool connection per statement cost 20-28 us more than a
    connection kept open (the pool's checkout and return, and two autocommit
    switches), and a worker at C=50 claims thousands of times a second: the
    drain lost 8%. One connection shared by the claims and the outcomes made
    them wait for each other, and the drain lost 15%. So each keeps its own,
    outside the pool: one round trip per statement, prepared on first use
    unless `pooled`. It opens on first use and is dropped on a connection
    error; the next statement opens a new one.

    Args:
        dsn: where to connect.
        pooled: the DSN may be a transaction pooler: never prepare.
    """

    def __init__(self, dsn: str, *, pooled: bool = False) -> None:
        self.dsn = dsn
        self.pooled = pooled
        self._conn: psycopg.AsyncConnection[tuple[Any, ...]] | None = None
        self._opening = asyncio.Lock()

    async def _connection(self) -> psycopg.AsyncConnection[tuple[Any, ...]]:
        async with self._opening:  # the two loops must not both open one
            if self._conn is None or self._conn.closed:
                self._conn = await _connect.connect_async(
                    self.dsn,
                    _connect.WORKER,
                    autocommit=True,
                    row_factory=tuple_row,
                    pooled=self.pooled,
                )
            return self._conn

    async def fetch(
        self, query: str, params: dict[str, Any], row_factory: AsyncRowFactory[T]
    ) -> list[T]:
        """Run a named query as its own transaction; its rows, made by `row_factory`.

        A kept connection that died while idle (a server restart, a terminated
        backend) fails on first use; the statement is then tried once more on
        a new connection, so the loop does not report an outage that is
        already over. The claims and the outcome batches are safe to repeat:
        a claim whose reply was lost is given back by the heartbeat, and
        completions are fenced.
        """
        reused = self._conn is not None and not self._conn.closed
        try:
            return await self._fetch_once(query, params, row_factory)
        except CONNECTION_ERRORS:
            await self.close()
            if not reused:
                raise
        try:
            return await self._fetch_once(query, params, row_factory)
        except CONNECTION_ERRORS:
            await self.close()
            raise

    async def _fetch_once(
        self, query: str, params: dict[str, Any], row_factory: AsyncRowFactory[T]
    ) -> list[T]:
        conn = await self._connection()
        async with conn.cursor(row_factory=row_factory) as cur:
            await cur.execute(_sql.psycopg(query), params, prepare=None if self.pooled else True)
            return await cur.fetchall() if cur.description else []

    @classmethod
    def for_pool(cls, pool: AsyncConnectionPool[Any]) -> HotConnection:
        """One to the pool's DSN, and never preparing if the pool's connections do not."""
        kwargs = pool.kwargs if isinstance(pool.kwargs, dict) else {}
        return cls(str(pool.conninfo), pooled=kwargs.get("prepare_threshold", 0) is None)

    async def close(self) -> None:
        """Close the connection, if open."""
        conn, self._conn = self._conn, None
        if conn is not None and not conn.closed:
            with contextlib.suppress(*CONNECTION_ERRORS):
                await conn.close()
