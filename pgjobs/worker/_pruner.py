"""Pruner: deletes finished jobs past their retention, in bounded batches (a leader duty)."""

from __future__ import annotations

from typing import Any

from psycopg_pool import AsyncConnectionPool

from pgjobs._log import get_logger
from pgjobs.worker._db import Outage, fetch
from pgjobs.worker._service import Service


class Pruner(Service):
    """Deletes succeeded, cancelled and failed jobs older than their retention.

    Each statement deletes at most `batch` rows, in its own short transaction,
    with `pause` seconds between statements, so the pruner never holds many
    locks or a long transaction, and a big backlog is cleared over several
    statements (and, past `max_batches`, over several runs). Queued and
    running jobs are never candidates. Worker rows gone for longer than
    `stale_after` with no running job are removed too.

    Args:
        pool: the worker's pool.
        retention: seconds each finished status is kept, by status; None keeps
            that status forever.
        stale_after: seconds after which a silent worker's row is gone.
        batch: rows per statement at most.
        pause: seconds between two statements.
        max_batches: statements per status per run at most.
        interval: seconds between passes (±20%).
        outage: shared with the worker's other services.

    `stop` cuts a pass short, between two statements.
    """

    name = "pruner"

    def __init__(
        self,
        pool: AsyncConnectionPool[Any],
        retention: dict[str, float | None],
        stale_after: float,
        *,
        batch: int = 1000,
        pause: float = 0.05,
        max_batches: int = 100,
        interval: float = 60.0,
        outage: Outage | None = None,
    ) -> None:
        super().__init__(outage=outage, interval=interval, jitter=0.2)
        self.pool = pool
        self.retention = retention
        self.stale_after = stale_after
        self.batch = batch
        self.pause = pause
        self.max_batches = max_batches
        self._log = get_logger()

    async def run_once(self) -> None:
        """Prune once (see `prune`)."""
        await self.prune()

    async def prune(self) -> dict[str, int]:
        """Prune once; returns the rows deleted by status (and "workers"), and logs them."""
        counts: dict[str, int] = {}
        for status, retention in self.retention.items():
            if retention is None:
                continue
            counts[status] = await self._prune_status(status, retention)
        rows = await fetch(self.pool, "prune_workers", {"stale_after": self.stale_after})
        counts["workers"] = int(rows[0]["removed"])
        if any(counts.values()):
            self._log.info("pruner.pruned", **counts)
        else:
            self._log.debug("pruner.idle")
        return counts

    async def _prune_status(self, status: str, retention: float) -> int:
        total = 0
        for _ in range(self.max_batches):
            rows = await fetch(
                self.pool,
                "prune_jobs",
                {"status": status, "retention": retention, "batch": self.batch},
            )
            deleted = int(rows[0]["deleted"])
            total += deleted
            if deleted < self.batch or await self.sleep(self.pause):
                break
        return total
