"""Rescuer: returns the jobs of dead workers to the queue (a leader duty).

A worker is dead when its heartbeat is stale (`stale_after`), or, much
sooner, when the liveness lock its listener holds (pgjobs/_names.py,
LIVENESS_LOCK_CLASSID) has been missing for `grace` seconds: PostgreSQL
frees a session's locks the moment its connection closes, so a SIGKILLed
worker's jobs are back in the queue about a second later, not after 30.

How long a lock must be missing is the trade between speed and a false
death. A live worker's lock is missing only while its listener reconnects
(pg_terminate_backend, a dropped connection): the listener takes it again
first thing, after a backoff of at most 0.2 s on its first attempt. So the
rescuer waits `grace` seconds (0.8 by default, four times that), measured
on the database's clock from the first pass that saw the lock missing to
a later pass that sees it missing still; with passes every half second,
that is the second or third pass after the kill (see WorkerConfig). After
a server restart every lock is gone at once while every listener
reconnects: the statement ignores missing locks until the database's
connections have been up for `settle` seconds (pgjobs/sql/rescue.sql).

The ids seen lockless, and since when, live in this object only. A new
leader starts with none (its first pass sees, its next passes rescue), and
a view with a gap in it is thrown away: a lock missing at two moments a
minute apart may have been back in between.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from dataclasses import dataclass

from pgjobs._log import get_logger
from pgjobs._names import LIVENESS_LOCK_CLASSID
from pgjobs.worker._db import ConnectionSource, Outage, fetch
from pgjobs.worker._service import Service

#: Seconds the database's oldest connection must have been up before a
#: missing lock counts: every listener reconnects within about a second of
#: the server's return (pgjobs/worker/_listener.py, RECONNECT_CAP).
RECONNECT_SETTLE = 3.0


@dataclass(frozen=True, slots=True)
class RescuePass:
    """What one run of rescue.sql did and saw.

    Attributes:
        counts: dead_workers (of which lost_locks were found by their
            lock), and the jobs requeued, failed and cancelled (a cancel
            was asked while they ran).
        lockless: the marked workers whose lock is missing now (not yet dead).
        at: the database's now() during the pass.
    """

    counts: dict[str, int]
    lockless: tuple[int, ...]
    at: dt.datetime


async def rescue_pass(
    pool: ConnectionSource,
    stale_after: float,
    *,
    suspects: dict[int, dt.datetime] | None = None,
    grace: float = 0.8,
    settle: float = RECONNECT_SETTLE,
) -> RescuePass:
    """Run rescue.sql once.

    Args:
        pool: where to run it.
        stale_after: seconds without a heartbeat before a worker is dead.
        suspects: workers seen lockless on earlier passes, with the `at` of
            the first pass that saw each.
        grace: seconds a suspect's lock must have been missing.
        settle: see RECONNECT_SETTLE.

    The statement is idempotent and safe to run from several processes at
    once (orphaned rows are locked with SKIP LOCKED, so each is rescued once),
    which is what makes two leaders harmless.
    """
    suspects = suspects or {}
    rows = await fetch(
        pool,
        "rescue",
        {
            "stale_after": stale_after,
            "classid": LIVENESS_LOCK_CLASSID,
            "suspects": list(suspects),
            "suspected_at": list(suspects.values()),
            "grace": grace,
            "settle": settle,
        },
    )
    row = rows[0]
    counts = {
        name: int(row[name])
        for name in ("dead_workers", "lost_locks", "requeued", "failed", "cancelled")
    }
    return RescuePass(counts, tuple(int(i) for i in row["lockless"]), row["at"])


async def rescue_once(pool: ConnectionSource, stale_after: float) -> dict[str, int]:
    """Rescue the workers whose heartbeat is stale, and orphaned jobs; returns the counts."""
    return (await rescue_pass(pool, stale_after)).counts


class Rescuer(Service):
    """The leader's rescue duty: a worker silent for `stale_after` seconds, or lockless, is dead.

    Args:
        pool: the worker's pool.
        stale_after: seconds without a heartbeat before a worker is dead.
        interval: seconds between passes (±20%).
        grace: seconds a worker's liveness lock must have been missing.
        settle: see RECONNECT_SETTLE.
        outage: shared with the worker's other services.
    """

    name = "rescuer"

    def __init__(
        self,
        pool: ConnectionSource,
        stale_after: float,
        *,
        interval: float = 0.5,
        grace: float = 0.8,
        settle: float = RECONNECT_SETTLE,
        outage: Outage | None = None,
    ) -> None:
        super().__init__(outage=outage, interval=interval, jitter=0.2)
        self.pool = pool
        self.stale_after = stale_after
        self.grace = grace
        self.settle = settle
        #: Workers seen lockless, with when they were first seen so (the database's clock).
        self.suspects: dict[int, dt.datetime] = {}
        self._last_pass: float | None = None
        self._log = get_logger()

    async def run_once(self) -> None:
        """Rescue once and log the counts when anything was rescued."""
        now = asyncio.get_running_loop().time()
        if self._last_pass is not None and now - self._last_pass > self._longest_gap():
            # Not leading for a while, or passes failing: what was seen
            # before the gap says nothing about the lock meanwhile.
            self.suspects.clear()
        self._last_pass = now
        try:
            found = await rescue_pass(
                self.pool,
                self.stale_after,
                suspects=self.suspects,
                grace=self.grace,
                settle=self.settle,
            )
        except BaseException:
            self.suspects.clear()
            raise
        self.suspects = {worker: self.suspects.get(worker, found.at) for worker in found.lockless}
        if any(found.counts.values()):
            self._log.warning("rescuer.rescued", **found.counts)
        else:
            self._log.debug("rescuer.idle", lockless=len(found.lockless))

    def _longest_gap(self) -> float:
        """The longest pause between two passes of an unbroken view."""
        return 3 * (self.interval or 0.0) * (1 + self.jitter) + 1.0
