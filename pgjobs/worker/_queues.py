"""Every queue: the queues a `--queues '*'` worker serves, found as they appear."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from psycopg_pool import AsyncConnectionPool

from pgjobs._log import get_logger
from pgjobs.worker._config import EVERY_QUEUE
from pgjobs.worker._db import Outage, fetch
from pgjobs.worker._service import Service

#: Seconds a found queue stays served after its last queued job was seen:
#: while it is listed in the worker's row, enqueuers notify the worker of
#: its jobs, so a queue that empties now and then keeps its wake-ups.
KEEP = 300.0


class EveryQueue(Service):
    """Finds the queues that have queued jobs, and hands them to the claims.

    A pass reads the queues with queued jobs (pgjobs/sql/queued_queues.sql:
    one index probe per queue, never a read of the jobs), every `interval`
    seconds (the poll interval). When the list changes, `on_change` gets it
    (the fetcher claims from those queues, with the claim of one queue when
    there is one), the worker's row lists them after '*' (enqueuers notify
    a waiting worker only of queues in its row), and when a queue was added
    `wake` is set so the claim comes at once. A queue with no queued job
    left stays listed for `keep` seconds.

    The first job of a queue that no worker has served yet waits for the
    next pass (at most `interval` seconds): nobody is notified of it.

    Args:
        pool: the worker's pool.
        worker_id: whose row lists the queues.
        on_change: called with the sorted list of queues whenever it changes.
        wake: set when a queue is added.
        interval: seconds between passes.
        keep: seconds a queue stays listed after its last queued job.
        outage: shared with the worker's other services.
    """

    name = "queues"

    def __init__(
        self,
        pool: AsyncConnectionPool[Any],
        worker_id: int,
        on_change: Callable[[list[str]], object],
        wake: asyncio.Event,
        *,
        interval: float,
        keep: float = KEEP,
        outage: Outage | None = None,
    ) -> None:
        super().__init__(outage=outage, interval=interval)
        self.pool = pool
        self.worker_id = worker_id
        self.on_change = on_change
        self.wake_fetcher = wake
        self.keep = keep
        #: The queues served now, sorted.
        self.queues: list[str] = []
        # When each queue was last seen with a queued job (loop time).
        self._seen: dict[str, float] = {}
        self._recorded: list[str] | None = None
        self._log = get_logger(worker_id=worker_id)

    async def run_once(self) -> None:
        """Read the queues with queued jobs; hand over and record the list if it changed."""
        rows = await fetch(self.pool, "queued_queues", {})
        now = asyncio.get_running_loop().time()
        for row in rows:
            self._seen[row["queue"]] = now
        for queue, seen in list(self._seen.items()):
            if now - seen > self.keep:
                del self._seen[queue]
        queues = sorted(self._seen)
        if queues != self.queues:
            added = sorted(set(queues) - set(self.queues))
            self.queues = queues
            self.on_change(queues)
            if added:
                self._log.info("worker.queues_found", added=added, queues=len(queues))
                self.wake_fetcher.set()
        if self._recorded != self.queues:
            # Retried on the next pass if the database is down now.
            await fetch(
                self.pool,
                "worker_queues",
                {"worker_id": self.worker_id, "queues": self.registered()},
            )
            self._recorded = self.queues

    def registered(self) -> list[str]:
        """The worker row's queues: '*', then the queues served now."""
        return [EVERY_QUEUE, *self.queues]
