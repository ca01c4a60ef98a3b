"""The connections the claims and the outcome batches keep while busy: one round trip each."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any, TypeVar

import psycopg
from psycopg.rows import AsyncRowFactory, tuple_row
from psycopg.types.json import set_json_loads
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from pgjobs import _connect, _serde, _sql
from pgjobs.worker._db import CONNECTION_ERRORS

T = TypeVar("T")

#: Seconds a hot connection stays open without a statement that found work
#: (returned rows): then it is closed, and the loop's statements go through
#: the pool until it is busy again. An idle worker so holds only its pool's
#: connection besides the listener's and the leader's.
IDLE_AFTER = 10.0


# The statements of a hot loop are prepared, and each keeps one generic plan.
# Left to choose, PostgreSQL planned a worker's claims anew at almost every run
# once a long drain was under way: in a 100,000-job drain, 1,342 claims
# custom-planned and none generic, 0.2-0.3 ms of server time each (the custom
# plans' estimates fell below the generic plan's as the position moved on).
# Their generic plans read only indexes (tests/integration/test_plans.py). A
# statement rather than a startup option: a session-pooling PgBouncer refuses
# startup options. A transaction pooler gets neither (nothing is prepared
# there, and a session setting would reach other clients).
_GENERIC_PLANS = "generic_plans"


class HotConnection:
    """An autocommit connection that a hot loop (the fetcher, the completer) keeps while busy.

    Borrowing a pool connection per statement cost 20-28 us more than a
    connection kept open (the pool's checkout and return, and two autocommit
    switches), and a worker at C=50 claims thousands of times a second: the
    drain lost 8%. One connection shared by the claims and the outcomes made
    them wait for each other, and the drain lost 15%. So each keeps its own,
    outside the pool: one round trip per statement, prepared on first use
    unless `pooled`.

    But only while it has work. With `pool`, a loop starts cold: its
    statements borrow the pool's connection, in autocommit. Two statements
    that find work (return rows) within `idle_after` seconds of each other
    open the loop's own connection, for the statements after; it is closed
    once `idle_after` seconds pass without one that finds work (an idle
    fetcher's empty polls do not count). A lone job now and then never
    opens one, and an idle worker holds none. Without `pool` the connection
    opens on the first statement and stays open.

    A connection error drops the connection; the next statement opens a new
    one.

    Args:
        dsn: where to connect.
        pooled: the DSN may be a transaction pooler: never prepare.
        pool: where cold statements run; None keeps the connection always.
        idle_after: seconds without work before the connection is closed.
    """

    def __init__(
        self,
        dsn: str,
        *,
        pooled: bool = False,
        pool: AsyncConnectionPool[Any] | None = None,
        idle_after: float = IDLE_AFTER,
    ) -> None:
        self.dsn = dsn
        self.pooled = pooled
        self.pool = pool
        self.idle_after = idle_after
        #: Connections opened so far, for the tests.
        self.opened = 0
        self._conn: psycopg.AsyncConnection[tuple[Any, ...]] | None = None
        self._opening = asyncio.Lock()
        # Loop time of the last statement that found work, here or cold.
        self._worked = float("-inf")
        self._warm = pool is None
        self._running = 0
        self._idle_timer: asyncio.TimerHandle | None = None
        self._closing: asyncio.Task[None] | None = None

    @property
    def connected(self) -> bool:
        """Whether the loop holds its own connection now."""
        return self._conn is not None and not self._conn.closed

    async def _connection(self) -> psycopg.AsyncConnection[tuple[Any, ...]]:
        async with self._opening:  # two statements must not both open one
            if self._conn is None or self._conn.closed:
                conn = await _connect.connect_async(
                    self.dsn,
                    _connect.WORKER,
                    autocommit=True,
                    row_factory=tuple_row,
                    pooled=self.pooled,
                )
                if not self.pooled:
                    try:
                        await conn.execute(_sql.psycopg(_GENERIC_PLANS))
                    except BaseException:
                        await conn.close()
                        raise
                # The claims' args and meta, the bulk of what a busy worker decodes.
                set_json_loads(_serde.load_json, conn)
                self._conn = conn
                self.opened += 1
                if self.pool is not None:
                    self._watch_idle(self.idle_after)
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
        self._running += 1
        try:
            if self.pool is not None and not self._warm and not self.connected:
                rows = await self._fetch_cold(self.pool, query, params, row_factory)
            else:
                rows = await self._fetch_hot(query, params, row_factory)
        finally:
            self._running -= 1
        if rows:
            now = asyncio.get_running_loop().time()
            # A second statement with work soon after the first: busy.
            self._warm = self._warm or now - self._worked < self.idle_after
            self._worked = now
        return rows

    async def _fetch_hot(
        self, query: str, params: dict[str, Any], row_factory: AsyncRowFactory[T]
    ) -> list[T]:
        reused = self.connected
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

    async def _fetch_cold(
        self,
        pool: AsyncConnectionPool[Any],
        query: str,
        params: dict[str, Any],
        row_factory: AsyncRowFactory[T],
    ) -> list[T]:
        # A pool connection that died while idle is discarded by the pool and
        # the statement tried once more; waiting for one is not retried.
        try:
            return await _fetch_pooled(pool, query, params, row_factory)
        except PoolTimeout:
            raise
        except (psycopg.OperationalError, psycopg.InterfaceError):
            return await _fetch_pooled(pool, query, params, row_factory)

    def _watch_idle(self, delay: float) -> None:
        if self._idle_timer is None:
            self._idle_timer = asyncio.get_running_loop().call_later(delay, self._check_idle)

    def _check_idle(self) -> None:
        """Close the connection once no statement found work for `idle_after` seconds."""
        self._idle_timer = None
        if not self.connected:
            return
        idle = asyncio.get_running_loop().time() - self._worked
        if self._running or idle < self.idle_after:
            self._watch_idle(self.idle_after - idle if not self._running else self.idle_after)
            return
        self._warm = False
        self._closing = asyncio.ensure_future(self.close())

    @classmethod
    def for_pool(cls, pool: AsyncConnectionPool[Any]) -> HotConnection:
        """One to the pool's DSN, and never preparing if the pool's connections do not."""
        kwargs = pool.kwargs if isinstance(pool.kwargs, dict) else {}
        return cls(str(pool.conninfo), pooled=kwargs.get("prepare_threshold", 0) is None)

    async def close(self) -> None:
        """Close the connection, if open."""
        if self._idle_timer is not None:
            self._idle_timer.cancel()
            self._idle_timer = None
        conn, self._conn = self._conn, None
        if conn is not None and not conn.closed:
            with contextlib.suppress(*CONNECTION_ERRORS):
                await conn.close()


async def _fetch_pooled(
    pool: AsyncConnectionPool[Any],
    query: str,
    params: dict[str, Any],
    row_factory: AsyncRowFactory[T],
) -> list[T]:
    """One statement on a pool connection, in autocommit: one round trip, not three."""
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
