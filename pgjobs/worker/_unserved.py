"""Unserved queues: the leader logs queues that have due jobs and no live worker (a duty)."""

from __future__ import annotations

from typing import Any

from pgjobs._log import get_logger
from pgjobs.worker._db import ConnectionSource, Outage, fetch
from pgjobs.worker._service import Service

#: Due jobs counted per unserved queue at most: the log line says "at least
#: this many" past it, and the count stays cheap whatever the backlog.
DUE_CAP = 100_000


async def unserved_queues(
    pool: ConnectionSource, stale_after: float, cap: int = DUE_CAP
) -> list[dict[str, Any]]:
    """The queues with due jobs that no live worker serves (pgjobs/sql/unserved_queues.sql).

    Returns:
        One dict per queue: queue, due (counted up to `cap`), and
        oldest_due_seconds, the age of its oldest due job.
    """
    return await fetch(pool, "unserved_queues", {"stale_after": stale_after, "cap": cap})


class UnservedQueues(Service):
    """Logs `leader.unserved_queue` for each queue with due jobs and no live worker.

    A job enqueued to a queue that no worker claims from waits forever,
    silently: a typo in a queue name, or a worker started with too short a
    `--queues`. One line per such queue per pass (once a minute by
    default), with the queue, its due jobs and the age of the oldest, is
    how an operator learns of it.

    The first pass comes `start_delay` seconds after the first election,
    so that workers deployed together have registered: a queue whose
    worker is still starting is not unserved.

    Args:
        pool: the worker's pool.
        stale_after: a worker whose heartbeat is older does not serve anything.
        interval: seconds between passes (±20%).
        start_delay: seconds before the first pass.
        outage: shared with the worker's other services.
    """

    name = "unserved"

    def __init__(
        self,
        pool: ConnectionSource,
        stale_after: float,
        *,
        interval: float = 60.0,
        start_delay: float = 10.0,
        outage: Outage | None = None,
    ) -> None:
        super().__init__(outage=outage, interval=interval, jitter=0.2)
        self.pool = pool
        self.stale_after = stale_after
        self.start_delay = start_delay
        self._started = False
        self._log = get_logger()

    async def run_once(self) -> float | None:
        """Log each unserved queue; the first call only waits `start_delay`."""
        if not self._started and self.start_delay > 0:
            self._started = True
            return self.start_delay
        self._started = True
        for row in await unserved_queues(self.pool, self.stale_after):
            due = int(row["due"])
            self._log.warning(
                "leader.unserved_queue",
                queue=row["queue"],
                due=due,
                due_capped=due >= DUE_CAP,
                oldest_due_seconds=round(float(row["oldest_due_seconds"]), 1),
                hint="no live worker claims from this queue: start one with --queues "
                "including it, or check the queue name the jobs were enqueued with",
            )
        return None
