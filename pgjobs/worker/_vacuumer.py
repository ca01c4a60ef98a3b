"""Vacuumer: vacuums the live table as soon as its dead rows pile up (a leader duty)."""

from __future__ import annotations

from pgjobs import _sql
from pgjobs._log import get_logger
from pgjobs.worker._db import ConnectionSource, Outage, fetch
from pgjobs.worker._service import Service

#: The longest pause after VACUUMs that could remove nothing (see `Vacuumer`).
MAX_FUTILE_PAUSE = 30.0


class Vacuumer(Service):
    """Runs VACUUM on pgjobs.jobs_live whenever it holds `dead_rows` dead rows or more.

    Each job leaves two dead row versions in the live table (its claim and
    its completion). At thousands of jobs a second that is tens of thousands
    of dead rows between two visits of autovacuum, which looks at a table
    at most once per `autovacuum_naptime` (a minute by default), and not at
    all where autovacuum is off. The live table holds only the backlog, so
    vacuuming it is quick (milliseconds to a few tens), and doing it every
    few seconds keeps its dead rows, and its size, bounded.

    VACUUM takes a SHARE UPDATE EXCLUSIVE lock, which claims, completions
    and enqueues do not conflict with; SKIP_LOCKED makes a pass skip the
    table while autovacuum or another VACUUM holds it. A transaction that
    holds back the xmin horizon keeps every row version newer than itself,
    whatever vacuums: `pgjobs doctor` names it. While it lasts, a VACUUM
    removes nothing and still reads every page, so after one that left
    most dead rows in place the next waits twice as long as the last pause
    (from `interval` up to MAX_FUTILE_PAUSE), and the cadence comes back
    with the first VACUUM that removes them.

    Args:
        pool: the worker's pool.
        dead_rows: the dead rows that start a VACUUM.
        interval: seconds between checks (±20%). A check reads the
            statistics collector, not the table.
        outage: shared with the worker's other services.
    """

    name = "vacuumer"

    def __init__(
        self,
        pool: ConnectionSource,
        *,
        dead_rows: int = 10_000,
        interval: float = 5.0,
        outage: Outage | None = None,
    ) -> None:
        super().__init__(outage=outage, interval=interval, jitter=0.2)
        self.pool = pool
        self.dead_rows = dead_rows
        self._log = get_logger()
        #: VACUUMs run so far, for the tests and the benchmark.
        self.vacuums = 0
        self._futile_pause = 0.0

    async def _dead_rows(self) -> int:
        (row,) = await fetch(self.pool, "live_dead_rows", {})
        return int(row["dead_rows"])

    async def run_once(self) -> float | None:
        """Vacuum the live table if it holds `dead_rows` dead rows or more.

        Returns:
            None for the regular cadence, or the pause after a VACUUM that
            could remove almost nothing.
        """
        dead = await self._dead_rows()
        if dead < self.dead_rows:
            self._futile_pause = 0.0
            return None
        async with self.pool.connection() as conn:
            # VACUUM refuses to run inside a transaction block.
            await conn.set_autocommit(True)
            try:
                await conn.execute(_sql.psycopg("vacuum_live"))
            finally:
                await conn.set_autocommit(False)
        self.vacuums += 1
        left = await self._dead_rows()
        self._log.debug("vacuumer.vacuumed", dead_rows=dead, dead_rows_left=left)
        if left >= self.dead_rows and 2 * left >= dead:
            self._futile_pause = min(
                MAX_FUTILE_PAUSE, max(self.interval or 0.0, 2 * self._futile_pause)
            )
            self._log.info(
                "vacuumer.horizon_held",
                dead_rows_left=left,
                next_try_in=self._futile_pause,
                hint="a transaction holds back the xmin horizon: see `pgjobs doctor`",
            )
            return self._futile_pause
        self._futile_pause = 0.0
        return None
