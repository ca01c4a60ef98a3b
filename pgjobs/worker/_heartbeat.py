"""Heartbeat: keeps this worker's row fresh, and gives back jobs it was never handed."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Collection
from typing import Any

from psycopg_pool import AsyncConnectionPool

from pgjobs._log import get_logger
from pgjobs.worker._db import Outage, fetch
from pgjobs.worker._service import Service


class Heartbeat(Service):
    """Refreshes `workers.last_seen_at` every `interval` seconds.

    If the row is gone, the rescuer has declared this worker dead (it was
    paused or cut off for longer than the stale threshold) and returned its
    jobs to the queue; the worker registers again under the same id, and the
    completer's fence drops any late results for the rescued jobs.

    With `known` (the ids of every job this worker runs or holds an outcome
    for), each beat also gives back the jobs the database says this worker
    runs but it has never seen, once claimed `orphan_age` seconds ago
    (pgjobs/sql/release_orphans.sql): a claim whose reply was lost with its
    connection. The rescuer cannot see them, since this worker is alive.

    A beat that finds the database down is not retried sooner: the next one
    comes after the regular interval.
    """

    name = "heartbeat"
    #: The worker has just registered: the first beat is one interval later.
    start_after = None

    def __init__(
        self,
        pool: AsyncConnectionPool[Any],
        worker_id: int,
        interval: float,
        outage: Outage,
        reregister: Callable[[], Awaitable[object]],
        known: Callable[[], Collection[int]] | None = None,
        orphan_age: float = 30.0,
        on_cancel: Callable[[int], object] | None = None,
    ) -> None:
        super().__init__(outage=outage, interval=interval)
        self.pool = pool
        self.worker_id = worker_id
        self.reregister = reregister
        self.known = known
        self.orphan_age = orphan_age
        #: Called with each running job of this worker that pgjobs.cancel()
        #: asked to stop: the fallback for a missed control notification.
        self.on_cancel = on_cancel
        self._log = get_logger(worker_id=worker_id)

    async def run_once(self) -> None:
        """Beat once; register again if the row is gone; give back orphaned claims."""
        rows = await fetch(self.pool, "heartbeat", {"worker_id": self.worker_id})
        if not rows and not self.stopping:
            self._log.warning("worker.reregistered")
            await self.reregister()
        if rows and self.on_cancel is not None:
            for job_id in rows[0]["cancels"]:
                self.on_cancel(job_id)
        if self.known is not None:
            await _release_orphans(
                self.pool, self.worker_id, list(self.known()), self.orphan_age, self._log
            )

    async def on_lost(self, exc: BaseException, failures: int) -> float | None:
        """Report the outage; the next beat comes on the regular interval."""
        self.outage.failed(self.name, exc)
        return None


async def _release_orphans(
    pool: AsyncConnectionPool[Any], worker_id: int, known: list[int], min_age: float, log: Any
) -> None:
    # `known` is read before the query is sent, in the loop that dispatches
    # claimed jobs: a job is in it from the moment its claim's reply arrives
    # until its outcome is committed. A claim younger than min_age may still
    # be on its way and is never touched.
    rows = await fetch(
        pool,
        "release_orphans",
        {"worker_id": worker_id, "known": known, "min_age": min_age},
    )
    released = list(rows[0]["ids"]) if rows else []
    if released:
        log.warning(
            "worker.orphans_released",
            job_ids=released[:50],
            count=len(released),
            reason="claimed by this worker, but the claim's reply never arrived",
        )
