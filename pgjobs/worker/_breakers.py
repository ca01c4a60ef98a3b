"""Circuit breakers: written from the App at worker start; trials let through by the leader."""

from __future__ import annotations

from typing import Any

from psycopg_pool import AsyncConnectionPool

from pgjobs._app import App
from pgjobs._log import get_logger
from pgjobs.worker._db import ConnectionSource, Outage, fetch
from pgjobs.worker._service import Service


async def sync_breakers(pool: AsyncConnectionPool[Any], app: App) -> list[str]:
    """Write the App's circuit breakers to pgjobs.task_breakers; returns the tasks changed.

    A task the App registers without a breaker loses its row; a declared
    breaker keeps its state (pgjobs/sql/breakers_sync.sql).
    """
    declared = {
        name: task.config.circuit_breaker
        for name, task in app.tasks.items()
        if task.config.circuit_breaker is not None
    }
    plain = [name for name, task in app.tasks.items() if task.config.circuit_breaker is None]
    rows = await fetch(
        pool,
        "breakers_sync",
        {
            "tasks": list(declared),
            "failures": [b.failures for b in declared.values()],
            "cooldowns": [float(b.cooldown) for b in declared.values()],
            "plain": plain,
        },
    )
    changed = [str(row["task"]) for row in rows]
    log = get_logger()
    emit = log.info if changed else log.debug
    emit("breakers.synced", declared=len(declared), changed=changed)
    return changed


class BreakerTrials(Service):
    """Lets one trial job through each open breaker whose cooldown is over (a leader duty).

    The trial is named in `pgjobs.task_breakers.trial_job_id`, which every
    claim lets through while the breaker is half-open; its outcome, written
    by the completer, closes or reopens the breaker. A trial that ends with
    no such outcome (cancelled, deleted) is replaced on a later pass. With
    no breaker open, a pass is one look at a small table.

    Args:
        pool: where the duty's statement runs (the leader's session).
        interval: seconds between passes (±20%): how late, at most, a trial
            starts after the cooldown.
        outage: shared with the worker's other services.
    """

    name = "breakers"

    def __init__(
        self, pool: ConnectionSource, *, interval: float = 0.5, outage: Outage | None = None
    ) -> None:
        super().__init__(outage=outage, interval=interval, jitter=0.2)
        self.pool = pool
        self._log = get_logger()
        #: The tasks whose breaker held their jobs at the last pass, by task:
        #: what `breaker.opened` and `breaker.closed` are logged against. A
        #: new leader logs the breakers open when it starts as opened.
        self.holding: dict[str, str] = {}

    async def run_once(self) -> float | None:
        """Name the trials that are due; log each, and each breaker that opened or closed."""
        for row in await fetch(self.pool, "breakers_trial", {}):
            self._log.info(
                "breaker.trial", task=row["breaker"], job_id=row["trial"], queue=row["trial_queue"]
            )
        rows = await fetch(self.pool, "breakers_not_closed", {})
        now = {str(row["task"]): str(row["state"]) for row in rows}
        for row in rows:
            if row["task"] not in self.holding:
                self._log.warning(
                    "breaker.opened",
                    task=row["task"],
                    failures=row["consecutive_failures"],
                    retry_at=row["retry_at"].isoformat() if row["retry_at"] else None,
                )
        for task in sorted(set(self.holding) - set(now)):
            self._log.info("breaker.closed", task=task)
        self.holding = now
        return None
