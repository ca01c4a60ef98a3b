"""Completer: writes outcomes in batches, many per statement."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from psycopg_pool import AsyncConnectionPool

from pgjobs import _rows
from pgjobs._log import get_logger
from pgjobs.worker._db import CONNECTION_ERRORS, Outage, backoff
from pgjobs.worker._dedicated import DedicatedConnection
from pgjobs.worker._outcome import Outcome, batch_params


class Completer:
    """Collects outcomes and writes them with one UPDATE per batch (complete.sql).

    A batch is written when `batch_size` outcomes wait, or `interval` seconds
    after the first one arrived. When the database is down, outcomes stay in
    memory and are written once it is back; the fence in complete.sql drops
    any whose job was rescued meanwhile.
    """

    def __init__(
        self,
        pool: AsyncConnectionPool[Any],
        worker_id: int,
        outage: Outage,
        batch_size: int,
        interval: float,
    ) -> None:
        self.pool = pool
        self.worker_id = worker_id
        self.outage = outage
        self.batch_size = batch_size
        self.interval = interval
        self._pending: list[Outcome] = []
        self._arrived = asyncio.Event()
        self._full = asyncio.Event()
        self._closing = False
        self._log = get_logger()
        #: Outcomes the fence rejected: their job was rescued or re-claimed.
        self.fenced = 0
        self._writing: list[Outcome] = []
        # A connection of its own: one round trip per batch instead of three
        # through the pool. Its commits wait for the disk, as outcomes must.
        self._writer = DedicatedConnection(pool.conninfo)

    def add(self, outcome: Outcome) -> None:
        """Queue an outcome for the next batch."""
        self._pending.append(outcome)
        self._arrived.set()
        if len(self._pending) >= self.batch_size:
            self._full.set()

    def job_ids(self) -> list[int]:
        """Jobs whose outcome is not yet committed: pending, or in the batch being written."""
        return [o.job_id for o in self._writing] + [o.job_id for o in self._pending]

    @property
    def pending(self) -> int:
        """Outcomes not yet written."""
        return len(self._pending)

    async def run(self) -> None:
        """Write batches until `close` is called and nothing is pending."""
        try:
            await self._run()
        finally:
            await self._writer.close()

    async def _run(self) -> None:
        failures = 0
        while True:
            if not self._pending:
                if self._closing:
                    return
                self._arrived.clear()
                await self._arrived.wait()
                continue
            if len(self._pending) < self.batch_size and not self._closing:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._full.wait(), self.interval)
            batch, self._pending = (
                self._pending[: self.batch_size],
                self._pending[self.batch_size :],
            )
            self._full.clear()
            self._writing = batch
            try:
                await self._write(batch)
            except CONNECTION_ERRORS as exc:
                self._pending[:0] = batch
                self.outage.failed("completer", exc)
                failures += 1
                if self._closing and failures > 5:
                    self._log.error("completer.gave_up", pending=len(self._pending))
                    return
                await asyncio.sleep(backoff(failures))
            else:
                failures = 0
                self.outage.ok()
            finally:
                self._writing = []

    async def _write(self, batch: list[Outcome]) -> None:
        ids = await self._writer.fetch(
            "complete", batch_params(self.worker_id, batch), _rows.column_row("id")
        )
        if len(ids) < len(batch):
            written = set(ids)
            lost = [o.job_id for o in batch if o.job_id not in written]
            self.fenced += len(lost)
            self._log.warning("completer.fenced", job_ids=lost[:20], count=len(lost))

    def close(self) -> None:
        """Ask `run` to flush what is pending and return."""
        self._closing = True
        self._arrived.set()
        self._full.set()
