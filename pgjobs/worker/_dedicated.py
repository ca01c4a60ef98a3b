"""A loop's own autocommit connection, outside the pool: one round trip per statement."""

from __future__ import annotations

import contextlib
import inspect
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import psycopg
from psycopg.rows import AsyncRowFactory, tuple_row

from pgjobs import _connect, _sql
from pgjobs.worker._db import CONNECTION_ERRORS

T = TypeVar("T")


class DedicatedConnection:
    """An autocommit connection that a hot loop (fetcher, completer) keeps for itself.

    Through the pool a statement costs three round trips (BEGIN, the
    statement, COMMIT) plus the pool's bookkeeping; here it is one, and the
    statement is prepared on first use. The connection is opened lazily and
    dropped on any connection error, so the next call reconnects; the
    caller's own loop handles the error (and the outage) as before.

    Args:
        conninfo: where to connect: a DSN, or what the pool was given (a
            function returning one, possibly async).
        synchronous_commit: False makes the server acknowledge a commit before
            its WAL reaches disk. Only for writes that may be lost in a server
            crash without breaking at-least-once (see the fetcher).
    """

    def __init__(
        self,
        conninfo: str | Callable[[], str] | Callable[[], Awaitable[str]],
        *,
        synchronous_commit: bool = True,
    ) -> None:
        self.conninfo = conninfo
        self.synchronous_commit = synchronous_commit
        self._conn: psycopg.AsyncConnection[tuple[Any, ...]] | None = None

    async def _connection(self) -> psycopg.AsyncConnection[tuple[Any, ...]]:
        if self._conn is None or self._conn.closed:
            conninfo: Any = self.conninfo
            if callable(conninfo):
                conninfo = conninfo()
                if inspect.isawaitable(conninfo):
                    conninfo = await conninfo
            role = _connect.WORKER if self.synchronous_commit else _connect.CLAIMER
            self._conn = await _connect.connect_async(
                conninfo, role, autocommit=True, row_factory=tuple_row
            )
        return self._conn

    async def fetch(
        self, query: str, params: dict[str, Any], row_factory: AsyncRowFactory[T]
    ) -> list[T]:
        """Run a named query as its own transaction and return its rows, made by `row_factory`.

        A kept connection that died while idle (a server restart, a terminated
        backend) fails on first use; the statement is then tried once more on
        a new connection, so the loop does not report an outage that is
        already over. Every statement run here is safe to repeat: a claim
        whose reply was lost is given back by the heartbeat, completions are
        fenced, and the awaiting flag is idempotent.
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
            await cur.execute(_sql.psycopg(query), params, prepare=True)
            return await cur.fetchall() if cur.description else []

    async def close(self) -> None:
        """Close the connection, if open."""
        conn, self._conn = self._conn, None
        if conn is not None and not conn.closed:
            with contextlib.suppress(*CONNECTION_ERRORS):
                await conn.close()
