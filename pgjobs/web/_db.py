"""The dashboard's connection pool: opened on first use, one per event loop, autocommit."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import psycopg
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from pgjobs import _connect, _dsn, _sql
from pgjobs.errors import DatabaseUnavailableError

AsyncConn = psycopg.AsyncConnection[dict[str, Any]]


def query(name: str) -> str:
    """The dashboard query `name` (pgjobs/web/sql/NAME.sql), with psycopg placeholders."""
    return _sql.psycopg(name, "pgjobs.web")


class Database:
    """Connections for the dashboard, from a small pool of its own.

    The pool opens lazily on the first request, so the dashboard works when
    mounted inside another ASGI app (whose lifespan may never reach it) and
    when the database is down at start-up (pages then answer 503 until it is
    back). Each event loop gets its own pool, as psycopg pools are bound to
    the loop that opened them.

    Connections are autocommit: every dashboard statement is its own
    transaction, and none is held open between requests. A statement timeout
    bounds any query, so a slow one answers 503 instead of piling up.

    Behind a transaction-pooling PgBouncer (`pooled`), the statement timeout
    is not sent, as PgBouncer refuses the startup parameter that carries it;
    PgBouncer's `query_timeout`, or `ALTER ROLE ... SET statement_timeout`,
    can stand in. The dashboard's statements are never prepared either way.

    Args:
        dsn: where to connect.
        max_size: the most connections the pool opens.
        statement_timeout: milliseconds a dashboard query may run.
        connect_timeout: seconds a request waits for a connection.
        pooled: `dsn` is a transaction pooler (PgBouncer in transaction mode).
    """

    def __init__(
        self,
        dsn: str,
        *,
        max_size: int = 4,
        statement_timeout: int = 5000,
        connect_timeout: float = 5.0,
        pooled: bool = False,
    ) -> None:
        self.dsn = dsn
        self.pooled = pooled
        self.max_size = max_size
        self.statement_timeout = statement_timeout
        self.connect_timeout = connect_timeout
        self._pools: dict[asyncio.AbstractEventLoop, AsyncConnectionPool[AsyncConn]] = {}

    async def _pool(self) -> AsyncConnectionPool[AsyncConn]:
        loop = asyncio.get_running_loop()
        pool = self._pools.get(loop)
        if pool is None:
            role = _connect.DASHBOARD.with_settings(statement_timeout=int(self.statement_timeout))
            pool = _connect.async_pool(
                self.dsn,
                role,
                min_size=1,
                max_size=self.max_size,
                timeout=self.connect_timeout,
                autocommit=True,
                row_factory=dict_row,
                connect_timeout=max(1, int(self.connect_timeout)),
                pooled=self.pooled,
            )
            # A dead server must not make the first request hang: open without
            # waiting, and let the request's own timeout say it is unreachable.
            await pool.open(wait=False)
            self._pools[loop] = pool
        return pool

    @contextlib.asynccontextmanager
    async def connection(self) -> AsyncIterator[AsyncConn]:
        """A pooled autocommit connection.

        Raises:
            DatabaseUnavailableError: no connection within `connect_timeout`.
        """
        pool = await self._pool()
        try:
            async with pool.connection() as conn:
                yield conn
        except PoolTimeout:
            raise DatabaseUnavailableError(
                f"PostgreSQL at {_dsn.redact(self.dsn)} did not give a connection within "
                f"{self.connect_timeout:g}s; check that it is running and reachable"
            ) from None

    async def close(self) -> None:
        """Close every pool."""
        pools, self._pools = self._pools, {}
        for pool in pools.values():
            with contextlib.suppress(Exception):
                await pool.close()
