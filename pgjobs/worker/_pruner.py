"""Pruner: keeps the history's partitions (made ahead, dropped past retention), a leader duty."""

from __future__ import annotations

from psycopg import errors, sql

from pgjobs import _sql
from pgjobs._log import get_logger
from pgjobs.worker._db import ConnectionSource, Outage, fetch
from pgjobs.worker._service import Service

#: A detach or drop that meets these is retried on the next pass: a lock
#: wait that timed out, a partition dropped meanwhile by someone else, or a
#: detach another session has started.
#: Days of per-minute counts of finished jobs kept (the dashboard's chart reads
#: them for its last hour) and of per-hour counts (for its 24 hours and 7 days).
MINUTE_COUNTS_DAYS = 2
HOUR_COUNTS_DAYS = 31

_POSTPONED = (errors.LockNotAvailable, errors.UndefinedTable, errors.ObjectNotInPrerequisiteState)


class Pruner(Service):
    """Keeps pgjobs.job_history's partitions, and removes stale worker rows.

    Each pass:

    1. makes sure every finished status has partitions from now to `ahead`
       seconds ahead, each `step` seconds long, so a completion always finds
       the partition it writes to;
    2. moves finished jobs still in pgjobs.jobs_live into the history, in
       batches of `batch` (what an upgrade from revision 0008 left there, or a
       row an operator finished by hand), at most `max_batches` a pass;
    3. detaches (CONCURRENTLY: completions and readers go on) and drops every
       partition whose whole range is past its status's retention. Nothing
       is deleted row by row, so pruning leaves no dead tuples behind;
    4. deletes worker rows gone for longer than `stale_after` with no running job;
    5. deletes the per-minute counts of finished jobs (the dashboard's chart)
       older than MINUTE_COUNTS_DAYS days, and the per-hour ones older than
       HOUR_COUNTS_DAYS.

    A detach that waits longer than `lock_timeout` seconds for a lock gives
    up and is retried on the next pass: it waits for every transaction that
    can still see the partition, and a long one is not worth queueing behind.

    Args:
        pool: the worker's pool.
        retention: seconds each finished status is kept, by status; None keeps
            that status forever.
        stale_after: seconds after which a silent worker's row is gone.
        step: seconds per history partition (divides a day).
        ahead: seconds of partitions kept made ahead of now.
        batch: rows per move statement at most.
        max_batches: move statements per pass at most.
        interval: seconds between passes (±20%).
        lock_timeout: seconds a detach or drop waits for its lock.
        outage: shared with the worker's other services.

    `stop` cuts a pass short, between two statements.
    """

    name = "pruner"

    def __init__(
        self,
        pool: ConnectionSource,
        retention: dict[str, float | None],
        stale_after: float,
        *,
        step: float = 86_400.0,
        ahead: float = 2 * 86_400.0,
        batch: int = 5000,
        max_batches: int = 100,
        interval: float = 60.0,
        lock_timeout: float = 5.0,
        outage: Outage | None = None,
    ) -> None:
        super().__init__(outage=outage, interval=interval, jitter=0.2)
        self.pool = pool
        self.retention = retention
        self.stale_after = stale_after
        self.step = step
        self.ahead = ahead
        self.batch = batch
        self.max_batches = max_batches
        self.lock_timeout = lock_timeout
        self._log = get_logger()

    async def run_once(self) -> None:
        """Prune once (see `prune`)."""
        await self.prune()

    async def prune(self) -> dict[str, int]:
        """One pass; returns partitions made and dropped, rows moved and workers removed."""
        counts: dict[str, int] = {}
        rows = await fetch(self.pool, "history_create", {"step": self.step, "ahead": self.ahead})
        counts["partitions_made"] = int(rows[0]["made"])
        counts["moved"] = await self._move()
        counts["partitions_dropped"] = await self._drop_expired()
        rows = await fetch(self.pool, "prune_workers", {"stale_after": self.stale_after})
        counts["workers"] = int(rows[0]["removed"])
        rows = await fetch(
            self.pool,
            "prune_minute_counts",
            {"minute_days": MINUTE_COUNTS_DAYS, "hour_days": HOUR_COUNTS_DAYS},
        )
        counts["minute_counts"] = int(rows[0]["minutes"])
        counts["hour_counts"] = int(rows[0]["hours"])
        if any(counts.values()):
            self._log.info("pruner.pruned", **counts)
        else:
            self._log.debug("pruner.idle")
        return counts

    async def _move(self) -> int:
        total = 0
        for _ in range(self.max_batches):
            rows = await fetch(self.pool, "history_move", {"batch": self.batch})
            moved = int(rows[0]["moved"])
            total += moved
            if moved < self.batch or self.stopping:
                break
        return total

    async def _drop_expired(self) -> int:
        kept = {s: r for s, r in self.retention.items() if r is not None}
        if not kept:
            return 0
        expired = await fetch(
            self.pool,
            "history_expired",
            {"statuses": list(kept), "retentions": [float(r) for r in kept.values()]},
        )
        dropped = 0
        for row in expired:
            if self.stopping:
                break
            if await self._detach_and_drop(row["parent"], row["partition"], row["detaching"]):
                dropped += 1
        return dropped

    async def _detach_and_drop(self, parent: str, partition: str, detaching: bool) -> bool:
        names = {"parent": sql.Identifier(parent), "partition": sql.Identifier(partition)}
        detach = "history_detach_finalize" if detaching else "history_detach"
        async with self.pool.connection() as conn:
            # DETACH ... CONCURRENTLY refuses to run inside a transaction block.
            await conn.set_autocommit(True)
            try:
                await conn.execute(
                    _sql.psycopg("session_lock_timeout"), {"timeout": f"{self.lock_timeout}s"}
                )
                for name in (detach, "history_drop"):
                    await conn.execute(sql.SQL(_sql.text(name)).format(**names))
            except _POSTPONED as exc:
                self._log.warning(
                    "pruner.drop_postponed", partition=partition, error=str(exc).strip()[:200]
                )
                return False
            finally:
                await conn.execute(_sql.psycopg("session_lock_timeout_reset"))
                await conn.set_autocommit(False)
        self._log.info("pruner.partition_dropped", partition=partition)
        return True
