"""Rescuer: returns the jobs of dead workers to the queue (a leader duty)."""

from __future__ import annotations

from typing import Any

from psycopg_pool import AsyncConnectionPool

from pgjobs._log import get_logger
from pgjobs.worker._db import Outage, fetch
from pgjobs.worker._service import Service


async def rescue_once(pool: AsyncConnectionPool[Any], stale_after: float) -> dict[str, int]:
    """Run rescue.sql once: dead worker rows removed, their jobs requeued or failed.

    The statement is idempotent and safe to run from several processes at
    once (orphaned rows are locked with SKIP LOCKED, so each is rescued once),
    which is what makes two leaders harmless.
    """
    rows = await fetch(pool, "rescue", {"stale_after": stale_after})
    row = rows[0] if rows else {}
    return {name: int(row.get(name, 0)) for name in ("dead_workers", "requeued", "failed")}


class Rescuer(Service):
    """The leader's rescue duty: a worker silent for `stale_after` seconds is dead.

    Args:
        pool: the worker's pool.
        stale_after: seconds without a heartbeat before a worker is dead.
        interval: seconds between passes (±20%).
        outage: shared with the worker's other services.
    """

    name = "rescuer"

    def __init__(
        self,
        pool: AsyncConnectionPool[Any],
        stale_after: float,
        *,
        interval: float = 10.0,
        outage: Outage | None = None,
    ) -> None:
        super().__init__(outage=outage, interval=interval, jitter=0.2)
        self.pool = pool
        self.stale_after = stale_after
        self._log = get_logger()

    async def run_once(self) -> None:
        """Rescue once and log the counts when anything was rescued."""
        counts = await rescue_once(self.pool, self.stale_after)
        if any(counts.values()):
            self._log.warning("rescuer.rescued", **counts)
        else:
            self._log.debug("rescuer.idle")
