"""HotConnection on a real PostgreSQL: a connection of its own only while busy."""

from __future__ import annotations

import asyncio
import os
from typing import Any

import psycopg
from psycopg.rows import tuple_row
from psycopg_pool import AsyncConnectionPool

from pgjobs import _names
from pgjobs.worker._dedicated import HotConnection

Conn = psycopg.Connection[tuple[Any, ...]]
# Named queries of pgjobs: one that returns a row, one that returns none.
WORK = ("health_check", {})
NO_WORK = ("set_awaiting", {"worker_id": -1, "awaiting": False})


def own_backends(conn: Conn) -> int:
    """This process's pgjobs-worker connections other than the pool's."""
    name = _names.with_pid(_names.APP_NAME_WORKER, os.getpid())
    row = conn.execute(
        "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s"
        " AND datname = current_database()",
        (name,),
    ).fetchone()
    assert row is not None
    return int(row[0])


def test_it_opens_once_busy_and_closes_once_idle(dsn: str, conn: Conn) -> None:
    async def main() -> list[tuple[int, bool]]:
        seen = []
        # The pool's connections are named otherwise (no application name).
        async with AsyncConnectionPool(dsn, min_size=1, max_size=1, open=False) as pool:
            hot = HotConnection(dsn, pool=pool, idle_after=0.5)
            try:
                await hot.fetch(*NO_WORK, tuple_row)  # nothing found: stays on the pool
                await hot.fetch(*WORK, tuple_row)  # one statement with work: still the pool
                seen.append((own_backends(conn), hot.connected))
                await hot.fetch(*WORK, tuple_row)  # a second soon after: busy
                await hot.fetch(*WORK, tuple_row)  # ... so this one opens its own
                seen.append((own_backends(conn), hot.connected))
                for _ in range(10):  # statements that find nothing keep it no longer
                    await hot.fetch(*NO_WORK, tuple_row)
                    await asyncio.sleep(0.1)
                for _ in range(200):  # closed by its idle timer, within 10 s
                    if not hot.connected:
                        break
                    await asyncio.sleep(0.05)
                seen.append((own_backends(conn), hot.connected))
                assert await hot.fetch(*WORK, tuple_row) == [(1,)]  # idle again: the pool
                seen.append((own_backends(conn), hot.connected))
                assert hot.opened == 1
            finally:
                await hot.close()
        return seen

    assert asyncio.run(main()) == [(0, False), (1, True), (0, False), (0, False)]


def test_without_a_pool_it_keeps_its_connection(dsn: str, conn: Conn) -> None:
    async def main() -> tuple[int, bool]:
        hot = HotConnection(dsn, idle_after=0.1)
        try:
            await hot.fetch(*NO_WORK, tuple_row)
            await asyncio.sleep(0.3)
            return own_backends(conn), hot.connected
        finally:
            await hot.close()

    assert asyncio.run(main()) == (1, True)
