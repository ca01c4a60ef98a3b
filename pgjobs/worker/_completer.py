"""Completer: writes outcomes in batches, many per statement."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any

from psycopg import errors
from psycopg_pool import AsyncConnectionPool

from pgjobs import _rows
from pgjobs._log import get_logger
from pgjobs.worker._db import Outage
from pgjobs.worker._dedicated import HotConnection
from pgjobs.worker._outcome import Outcome, batch_params
from pgjobs.worker._service import Service


class Completer(Service):
    """Collects outcomes and writes them with one UPDATE per batch (complete.sql).

    A batch is written when `batch_size` outcomes wait, or `interval` seconds
    after the first one arrived, or at once when `idle()` says that no other
    outcome is coming (no job runs and no more were found): a worker running
    one job at a time, such as the steps of a chain, would otherwise add the
    whole interval to each job. After a batch written while idle, it calls
    `after_idle_write()` (the worker wakes its fetcher for one more look): an
    outcome can queue jobs (the dependents of a workflow, pgjobs/_workflow.py)
    whose wake-up no NOTIFY may bring, when the batch's transaction checked
    for workers awaiting work before this worker's mark was committed, and
    committed after its last look. When the database is down, outcomes stay in
    memory and are written once it is back; the fence in complete.sql drops
    any whose job was rescued meanwhile. `stop` flushes: `run` returns once
    nothing is pending (or, with the database still down, after a few tries).
    """

    name = "completer"
    #: The first pass waits for the first outcome.
    start_after = None
    #: Tries to write a batch, once stopping, before the rest is given up.
    CLOSING_TRIES = 5

    def __init__(
        self,
        pool: AsyncConnectionPool[Any],
        worker_id: int,
        outage: Outage,
        batch_size: int,
        interval: float,
        *,
        hot: HotConnection | None = None,
        idle: Callable[[], bool] | None = None,
        after_idle_write: Callable[[], None] | None = None,
    ) -> None:
        super().__init__(outage=outage)
        self._idle = idle
        self._after_idle_write = after_idle_write
        self.pool = pool
        # Batches go over the connection the Worker shares between its
        # fetcher and completer (one of its own when none is given).
        self._owns_hot = hot is None
        self.hot = hot if hot is not None else HotConnection.for_pool(pool)
        self.worker_id = worker_id
        self.batch_size = batch_size
        self.interval = interval
        self._pending: list[Outcome] = []
        self._arrived = asyncio.Event()
        self._full = asyncio.Event()
        self._gave_up = False
        self._log = get_logger()
        #: Outcomes the fence rejected: their job was rescued or re-claimed.
        self.fenced = 0
        self._writing: list[Outcome] = []

    def add(self, outcome: Outcome) -> None:
        """Queue an outcome for the next batch."""
        self._pending.append(outcome)
        self._arrived.set()
        if len(self._pending) >= self.batch_size or (self._idle is not None and self._idle()):
            self._full.set()

    def job_ids(self) -> list[int]:
        """Jobs whose outcome is not yet committed: pending, or in the batch being written."""
        return [o.job_id for o in self._writing] + [o.job_id for o in self._pending]

    @property
    def pending(self) -> int:
        """Outcomes not yet written."""
        return len(self._pending)

    @property
    def done(self) -> bool:
        """Stopping, and every outcome written (or given up on)."""
        return self.stopping and (not self._pending or self._gave_up)

    async def run_once(self) -> None:
        """Write the oldest `batch_size` pending outcomes, if any, in one statement."""
        if not self._pending:
            return
        batch, self._pending = (
            self._pending[: self.batch_size],
            self._pending[self.batch_size :],
        )
        self._full.clear()
        self._writing = batch
        try:
            await self._write(batch)
        except BaseException:
            self._pending[:0] = batch
            raise
        finally:
            self._writing = []
        if self._after_idle_write is not None and self._idle is not None and self._idle():
            self._after_idle_write()

    async def wait(self, pause: float | None) -> None:
        """Wait for a batch: the first outcome, then a full batch, an idle worker or `interval` s.

        After a lost connection (`pause` seconds), it waits out the backoff
        even when stopping: that is when outcomes most need writing.
        """
        if pause is not None:
            await asyncio.sleep(pause)
            return
        if not self._pending:
            if self.stopping:
                return
            self._arrived.clear()
            await self._arrived.wait()
        if len(self._pending) < self.batch_size and not self.stopping:
            if self._idle is not None and self._idle():
                return
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._full.wait(), self.interval)

    async def on_lost(self, exc: BaseException, failures: int) -> float | None:
        """Keep the batch for later; once stopping, give up after a few tries."""
        pause = await super().on_lost(exc, failures)
        if self.stopping and failures > self.CLOSING_TRIES:
            self._log.error("completer.gave_up", pending=len(self._pending))
            self._gave_up = True
            return 0
        return pause

    async def _write(self, batch: list[Outcome]) -> None:
        # One round trip per batch (autocommit); its commit waits for the disk.
        params = batch_params(self.worker_id, batch)
        try:
            ids = await self.hot.fetch("complete", params, _rows.column_row("id"))
        except errors.CheckViolation as exc:
            # No history partition for now(): the leader makes them days
            # ahead, so this means no leader has run for that long. The batch
            # failed as a whole (nothing written); make the partition and
            # write it again, rather than fail the worker.
            if "no partition" not in str(exc):
                raise
            self._log.warning("completer.history_partition_missing", error=str(exc).strip())
            await self.hot.fetch("history_cover_now", {}, _rows.column_row("made"))
            ids = await self.hot.fetch("complete", params, _rows.column_row("id"))
        if len(ids) < len(batch):
            written = set(ids)
            lost = [o.job_id for o in batch if o.job_id not in written]
            self.fenced += len(lost)
            self._log.warning("completer.fenced", job_ids=lost[:20], count=len(lost))

    def stop(self) -> None:
        """Write what is pending now, without waiting for a full batch, and then return."""
        super().stop()
        self._arrived.set()
        self._full.set()

    async def close(self) -> None:
        """Close the claims' and outcomes' connection, if it is this service's own."""
        if self._owns_hot:
            await self.hot.close()
