"""Database access for the worker's services: named queries, and riding out outages."""

from __future__ import annotations

import logging
import random
import time
from contextlib import AbstractAsyncContextManager
from typing import Any, Protocol

import psycopg
from psycopg.rows import dict_row
from psycopg_pool import PoolTimeout

from pgjobs import _sql
from pgjobs._log import get_logger

#: Errors that mean "the database went away", as opposed to a bug in a query.
CONNECTION_ERRORS = (psycopg.OperationalError, psycopg.InterfaceError, PoolTimeout, OSError)


class ConnectionSource(Protocol):
    """Where a service's statements run: the worker's pool, or the leader's connection.

    Both lend a connection the way AsyncConnectionPool.connection() does: in
    a transaction that commits when the block ends (rolls back on an error).
    """

    def connection(
        self, timeout: float | None = None
    ) -> AbstractAsyncContextManager[psycopg.AsyncConnection[Any]]:
        """A connection for the block, in a transaction committed at its end."""
        ...


class Outage:
    """Shared by every service, so an outage is logged once, not once per service or job.

    A server that goes away does not fail every connection at the same
    instant: after a crash, backends live on for a moment, and a loop may
    still succeed on one of them after another loop has failed. So one
    success does not end an outage; it ends only once `settle` seconds have
    passed without a failure. Until then a flapping outage stays one
    `db.unavailable` line and one `db.recovered` line.

    Args:
        settle: seconds without a failure before a success counts as recovery.
    """

    def __init__(self, settle: float = 1.0) -> None:
        self.down = False
        self.settle = settle
        #: Outages logged so far, for the tests and the benchmark.
        self.outages = 0
        self._last_failure = 0.0
        self._since = 0.0
        self._log = get_logger()
        _quiet_pool_reconnects()

    def failed(self, where: str, exc: BaseException) -> None:
        """Record a connection failure; logs only the first of an outage."""
        now = time.monotonic()
        self._last_failure = now
        if not self.down:
            self.down = True
            self.outages += 1
            self._since = now
            self._log.warning("db.unavailable", where=where, error=str(exc).strip()[:300])

    def ok(self) -> None:
        """Record a success; logs the recovery once the outage has settled."""
        if self.down:
            now = time.monotonic()
            if now - self._last_failure < self.settle:
                return
            self.down = False
            self._log.info("db.recovered", down_for=round(self._last_failure - self._since, 3))


class _PoolReconnectNoise(logging.Filter):
    """Drops psycopg_pool's warning per failed reconnect: Outage already says it once."""

    _NOISE = ("error connecting in", "discarding closed connection")

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.levelno < logging.ERROR and str(record.msg).startswith(self._NOISE))


_POOL_FILTER = _PoolReconnectNoise()


def _quiet_pool_reconnects() -> None:
    # The pool retries in the background and logs each failed attempt; during
    # an outage of a few seconds that is a dozen lines per worker, in whatever
    # format stdlib logging has, next to the one structured db.unavailable.
    pool_logger = logging.getLogger("psycopg.pool")
    if _POOL_FILTER not in pool_logger.filters:
        pool_logger.addFilter(_POOL_FILTER)


def backoff(attempt: int, base: float = 0.1, cap: float = 5.0) -> float:
    """Seconds to wait before reconnect attempt `attempt` (full jitter)."""
    return random.uniform(0, min(cap, base * 2**attempt))


async def fetch(pool: ConnectionSource, query: str, params: dict[str, Any]) -> list[dict[str, Any]]:
    """Run a named query in its own transaction and return its rows, by column name.

    A pooled connection that the server dropped while it sat idle (a restart,
    pg_terminate_backend) fails on first use; the pool discards it, and the
    query is tried once more on a fresh one, so a loop does not report an
    outage that is already over. Every pgjobs query run here is safe to
    repeat (a first register_worker whose reply was lost leaves at worst an
    extra worker row, which goes stale and is removed). Waiting for a
    connection (PoolTimeout) is not retried: the server is down, and the
    caller's loop backs off.
    """
    try:
        return await _fetch_once(pool, query, params)
    except PoolTimeout:
        raise
    except (psycopg.OperationalError, psycopg.InterfaceError):
        return await _fetch_once(pool, query, params)


async def _fetch_once(
    pool: ConnectionSource, query: str, params: dict[str, Any]
) -> list[dict[str, Any]]:
    async with pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(_sql.psycopg(query), params)
        return await cur.fetchall() if cur.description else []
