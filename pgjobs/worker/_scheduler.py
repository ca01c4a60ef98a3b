"""Scheduler: keeps pgjobs.schedules in step with the code, and fires due cron ticks once."""

from __future__ import annotations

import datetime as dt
from typing import Any

from psycopg.rows import dict_row

from pgjobs import _enqueue, _schedule, _sql
from pgjobs._app import App
from pgjobs._cron import Cron, parse
from pgjobs._enqueue import JobSpec
from pgjobs._log import get_logger
from pgjobs._options import EnqueueOptions
from pgjobs.errors import ConfigurationError
from pgjobs.worker._db import ConnectionSource, Outage, fetch
from pgjobs.worker._service import Service

#: How long the scheduler sleeps at most between looks at pgjobs.schedules,
#: so that schedules added by a newly started worker are seen soon.
MAX_WAIT = 1.0

#: Added to the wait for the next tick, so the database clock has passed it.
_MARGIN = 0.005


async def sync_schedules(pool: ConnectionSource, app: App) -> dict[str, list[str]]:
    """Upsert the App's schedules into pgjobs.schedules; mark the others inactive.

    Runs when a worker starts, in one transaction: at commit the table holds
    exactly the App's schedules as active (last writer wins when workers with
    different code start), with their watermarks kept; at rollback nothing changed.

    Returns:
        The names written ("changed", new or redefined) and marked inactive ("removed").

    Raises:
        ConfigurationError: a schedule fires a task that is not registered.
        ArgumentsError: a schedule's arguments do not fit its task.
    """
    rows = _schedule.rows(app)
    async with pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(_sql.psycopg("schedule_clock"), {})
        (clock,) = await cur.fetchall()  # SELECT now(): always one row
        now: dt.datetime = clock["now"]
        changed: list[str] = []
        if rows:
            await cur.execute(
                _sql.psycopg("schedule_upsert"),
                {
                    "names": [r["name"] for r in rows],
                    "expressions": [r["expression"] for r in rows],
                    "timezones": [r["timezone"] for r in rows],
                    "tasks": [r["task"] for r in rows],
                    "args": [r["args"] for r in rows],
                    "queues": [r["queue"] for r in rows],
                    "priorities": [r["priority"] for r in rows],
                    "max_attempts": [r["max_attempts"] for r in rows],
                    "backfills": [r["backfill"] for r in rows],
                    "skip_if_running": [r["skip_if_running"] for r in rows],
                    "next_fire_ats": [app.schedules[r["name"]].cron.next_tick(now) for r in rows],
                },
            )
            changed = [str(r["name"]) for r in await cur.fetchall()]
        await cur.execute(_sql.psycopg("schedule_deactivate"), {"names": [r["name"] for r in rows]})
        removed = [str(r["name"]) for r in await cur.fetchall()]
    log = get_logger()
    # Quiet unless something changed: a worker start that only confirms the
    # table is not news.
    emit = log.info if changed or removed else log.debug
    emit("schedules.synced", active=len(rows), changed=changed, removed=removed)
    return {"changed": changed, "removed": removed}


class Scheduler(Service):
    """Fires the due ticks of every active schedule: a leader duty.

    Each tick is one transaction on the pool: the compare-and-set of
    cron_claim_tick.sql moves the schedule's watermark from the value read to
    the tick and, only if that moved a row, the tick's job is enqueued. At
    commit both exist; at rollback neither, and the tick is retried. Another
    process that claims the same tick finds no row to move and enqueues
    nothing, so each tick fires once however many processes lead.

    Args:
        pool: the worker's pool.
        grace: how late (seconds) a tick may fire and be on time. Older
            missed ticks fire only within their schedule's backfill window.
        limit: the most ticks fired per schedule per round.
        outage: shared with the worker's other services.
    """

    name = "scheduler"

    def __init__(
        self,
        pool: ConnectionSource,
        grace: float,
        *,
        limit: int = 1000,
        outage: Outage | None = None,
    ) -> None:
        # Each pass asks for the pause until the next tick; MAX_WAIT is only the fallback.
        super().__init__(outage=outage, interval=MAX_WAIT)
        self.pool = pool
        self.grace = dt.timedelta(seconds=grace)
        self.limit = limit
        self.fired = 0
        self._crons: dict[tuple[str, str], Cron | None] = {}
        self._log = get_logger()

    async def run_once(self) -> float:
        """Fire what is due; returns the seconds until the next tick (at most MAX_WAIT)."""
        rows = await fetch(self.pool, "cron_due", {})
        now: dt.datetime = rows[0]["now"]
        wait = MAX_WAIT
        for row in rows:
            if row["name"] is None:
                continue  # no schedule: the row only carries the clock
            next_tick = await self._run_schedule(now, row)
            if next_tick is not None:
                wait = min(wait, (next_tick - now).total_seconds())
        return max(0.0, wait) + _MARGIN

    async def _run_schedule(self, now: dt.datetime, row: dict[str, Any]) -> dt.datetime | None:
        name: str = row["name"]
        backfill: dt.timedelta = row["backfill"]
        last_fired_at: dt.datetime | None = row["last_fired_at"]
        cron = self._cron(name, row["expression"], row["timezone"])
        if cron is None:
            return None
        window = max(backfill, self.grace)
        plan = _schedule.plan(
            cron,
            last_fired_at=last_fired_at,
            active_since=row["active_since"],
            now=now,
            window=window,
            limit=self.limit,
        )
        if plan.missed_after is not None and plan.due:
            count, capped = _schedule.count_missed(cron, plan.missed_after, now - window)
            self._log.warning(
                "cron.missed",
                schedule=name,
                count=count,
                at_least=capped,
                after=plan.missed_after.isoformat(),
                backfill=backfill.total_seconds(),
            )
        if not plan.due:
            if row["next_fire_at"] != plan.next_tick:
                await fetch(
                    self.pool, "cron_set_next", {"name": name, "next_fire_at": plan.next_tick}
                )
            return plan.next_tick
        previous = last_fired_at
        for index, tick in enumerate(plan.due):
            following = plan.due[index + 1] if index + 1 < len(plan.due) else plan.next_tick
            options = EnqueueOptions(
                queue=row["queue"],
                priority=row["priority"],
                run_at=tick,
                max_attempts=row["max_attempts"],
                fingerprint=_schedule.fingerprint(name) if row["skip_if_running"] else None,
                on_conflict="skip",
                meta={"cron": {"schedule": name, "tick": tick.isoformat()}},
            )
            spec = JobSpec(row["task"], row["args"], options)
            claimed, job_id = await self._fire(name, previous, tick, following, spec)
            if not claimed:
                # Another process moved the watermark first (it fired this
                # tick, or a later one): read the table again next round.
                self._log.info("cron.tick_taken", schedule=name, tick=tick.isoformat())
                return following
            previous = tick
            late = round((now - tick).total_seconds(), 3)
            if job_id is None:
                self._log.info(
                    "cron.skipped",
                    schedule=name,
                    tick=tick.isoformat(),
                    reason="the previous run is still queued or running",
                )
            else:
                self.fired += 1
                self._log.info(
                    "cron.fired",
                    schedule=name,
                    task=row["task"],
                    tick=tick.isoformat(),
                    job_id=job_id,
                    late=late,
                )
        return plan.next_tick

    async def _fire(
        self,
        name: str,
        previous: dt.datetime | None,
        tick: dt.datetime,
        following: dt.datetime,
        spec: JobSpec,
    ) -> tuple[bool, int | None]:
        """Claim one tick and enqueue its job, in one transaction."""
        async with self.pool.connection() as conn:
            async with conn.cursor(row_factory=dict_row) as cur:
                await cur.execute(
                    _sql.psycopg("cron_claim_tick"),
                    {"name": name, "previous": previous, "tick": tick, "next_fire_at": following},
                )
                if await cur.fetchone() is None:
                    return False, None
            return True, await _enqueue.enqueue_async(conn, spec)

    def _cron(self, name: str, expression: str, timezone: str) -> Cron | None:
        key = (expression, timezone)
        if key not in self._crons:
            try:
                self._crons[key] = parse(expression, timezone)
            except ConfigurationError as exc:
                # Written by other code (or by hand): this worker cannot read it.
                self._log.error("cron.invalid", schedule=name, error=str(exc))
                self._crons[key] = None
        return self._crons[key]
