"""Progress and checkpoints: what running handlers report about themselves, written fenced."""

from __future__ import annotations

import asyncio
from typing import Any

from psycopg_pool import AsyncConnectionPool

from pgjobs._log import get_logger
from pgjobs.worker._db import Outage, fetch
from pgjobs.worker._service import Service


class Progress(Service):
    """The worker's side of `current_job().progress()` and `.checkpoint()`.

    Progress is only noted (the latest report per job, from any thread) and
    written every `interval` seconds, all running jobs' reports in one
    statement (pgjobs/sql/progress.sql): a handler may report as often as it
    likes, and a worker whose handlers never report writes nothing. A
    checkpoint is written at once, and the handler's call returns when it
    is committed (pgjobs/sql/checkpoint.sql). Both are fenced as a
    completion is: only while the job still runs under this worker and this
    attempt.
    """

    name = "progress"

    def __init__(
        self,
        pool: AsyncConnectionPool[Any],
        worker_id: int,
        loop: asyncio.AbstractEventLoop,
        outage: Outage,
        interval: float = 1.0,
    ) -> None:
        super().__init__(outage=outage, interval=interval)
        self.pool = pool
        self.worker_id = worker_id
        self._loop = loop
        #: The latest report of each job since the last write: (attempt, JSON).
        self._reports: dict[int, tuple[int, str]] = {}
        self._log = get_logger(worker_id=worker_id)

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        """The worker's event loop: a sync handler's checkpoint runs on it."""
        return self._loop

    def progress(self, job_id: int, attempt: int, progress_json: str) -> None:
        """Note a job's latest progress (any thread: one dict store, atomic)."""
        self._reports[job_id] = (attempt, progress_json)

    async def checkpoint(self, job_id: int, attempt: int, state_json: str) -> None:
        """Write a job's checkpoint now; returns once committed."""
        params = {
            "worker_id": self.worker_id,
            "id": job_id,
            "attempt": attempt,
            "state": state_json,
        }
        if not await fetch(self.pool, "checkpoint", params):
            # Rescued or otherwise taken from this worker: its run is moot.
            self._log.warning("job.checkpoint_fenced", job_id=job_id, attempt=attempt)

    async def parent_results(self, ids: list[int]) -> dict[int, Any]:
        """The stored results of the succeeded jobs among `ids`, by id."""
        rows = await fetch(self.pool, "parent_results", {"ids": ids})
        return {int(r["id"]): r["result"] for r in rows if r["status"] == "succeeded"}

    async def run_once(self) -> None:
        """Write the reports noted since the last pass, if any."""
        if not self._reports:
            return
        reports, self._reports = self._reports, {}
        await fetch(
            self.pool,
            "progress",
            {
                "worker_id": self.worker_id,
                "ids": list(reports),
                "attempts": [attempt for attempt, _ in reports.values()],
                "reports": [report for _, report in reports.values()],
            },
        )

    async def close(self) -> None:
        """Write what is left (best effort: the jobs are finishing anyway)."""
        if self._reports:
            try:
                await self.run_once()
            except Exception as exc:  # a lost write of progress is harmless
                self._log.debug("progress.unwritten", error=str(exc))
