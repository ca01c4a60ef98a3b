"""Leader: one worker per database holds an advisory lock and runs the maintenance duties.

The leader is whoever holds the session-level advisory lock LEADER_LOCK_KEY
(pgjobs/_locks.py) on a dedicated connection, outside the pool. Every worker
runs a Leader: while it does not lead, it tries `pg_try_advisory_lock` every
`interval` seconds (±20%). Once it leads, it runs its duties (cron firing,
rescuer, pruner), each on its own clock, and checks in `pg_locks` before each
duty that its session still holds the lock.

Leadership ends when the connection does: the process dies (even by
SIGKILL, the server sees the socket close and frees the lock at once), its
backend is terminated, or a query on it fails or hangs for `query_timeout`.
Another worker then takes over within about `interval` seconds. (A network
partition that leaves the server's backend alive holds the lock until the
server notices the dead peer: TCP keepalives, or tcp_keepalives_idle.)

The lock only avoids wasted work; correctness never rests on it. Two
processes that both believe they lead (a paused VM that wakes after losing
its lock) still fire each cron tick once, through the compare-and-set in
pgjobs/sql/cron_claim_tick.sql, and the rescuer and the pruner are idempotent
(SKIP LOCKED).

Without a session to hold the lock (`dsn=None`: a poll-only worker behind a
transaction-pooling PgBouncer, with no separate `leader_dsn`), the Leader runs
lockless: it runs the duties itself, in every such worker, on those same
guarantees.
"""

from __future__ import annotations

import asyncio
import os
import random
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import psycopg
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

from pgjobs import _sql
from pgjobs._locks import LEADER_LOCK_KEY
from pgjobs._log import get_logger
from pgjobs.worker._config import WorkerConfig
from pgjobs.worker._db import CONNECTION_ERRORS, Outage, backoff, sleep_or_stop

_CLASSID = (LEADER_LOCK_KEY >> 32) & 0xFFFFFFFF
_OBJID = LEADER_LOCK_KEY & 0xFFFFFFFF


class Duty:
    """One job of the leader, run on its own clock.

    Args:
        name: names it in logs.
        run: the coroutine to run; it may return the seconds until it wants
            to run again (the scheduler does: until the next tick), or None
            for its regular interval.
        interval: the regular interval, in seconds.
        jitter: the fraction by which each interval is randomly stretched or
            shrunk, so that workers and duties do not move in lockstep.
    """

    def __init__(
        self,
        name: str,
        run: Callable[[], Awaitable[float | None]],
        interval: float,
        jitter: float = 0.2,
    ) -> None:
        self.name = name
        self.run = run
        self.interval = interval
        self.jitter = jitter
        self.next_at = 0.0

    def reschedule(self, now: float, wanted: float | None) -> None:
        """Set the next run `wanted` seconds from `now`, or one jittered interval."""
        if wanted is None:
            wanted = self.interval * random.uniform(1 - self.jitter, 1 + self.jitter)
        self.next_at = now + max(0.0, wanted)


class Leader:
    """Elects one leader per database and runs the duties while leading.

    Args:
        dsn: where to hold the lock: a direct or session-pooled address. None
            runs lockless (see the module docstring).
        duties: what the leader does.
        stop: set to step down and return.
        outage: shared with the worker's other loops.
        interval: seconds between attempts to become leader.
        worker_id: for the log lines.
        query_timeout: a query on the leader connection that takes longer
            ends the leadership (a half-open connection must not hang it).
        max_sleep: the longest the leader sleeps between duty checks.
    """

    def __init__(
        self,
        dsn: str | None,
        duties: Sequence[Duty],
        stop: asyncio.Event,
        outage: Outage,
        *,
        interval: float = 5.0,
        worker_id: int | None = None,
        query_timeout: float = 5.0,
        max_sleep: float = 1.0,
    ) -> None:
        self.dsn = dsn
        self.duties = list(duties)
        self.stop = stop
        self.outage = outage
        self.interval = interval
        self.query_timeout = query_timeout
        self.max_sleep = max_sleep
        self.elected = asyncio.Event()
        self.backend_pid: int | None = None
        self.terms = 0
        self._log = get_logger(worker_id=worker_id, pid=os.getpid())

    @property
    def is_leader(self) -> bool:
        """Whether this process leads now (as far as it knows)."""
        return self.elected.is_set()

    async def run(self) -> None:
        """Campaign, and lead when elected, until `stop` is set."""
        if self.dsn is None:
            self._log.warning(
                "leader.lockless",
                note="no session connection for the leader lock: this worker runs the "
                "leader's duties itself; cron ticks still fire once (compare-and-set)",
            )
            self.elected.set()
            self.terms += 1
            try:
                await self._lead(None)
            finally:
                self.elected.clear()
            return
        failures = 0
        while not self.stop.is_set():
            conn: psycopg.AsyncConnection[Any] | None = None
            try:
                conn = await self._connect(self.dsn)
                failures = 0
                await self._campaign(conn)
            except (*CONNECTION_ERRORS, TimeoutError) as exc:
                self._step_down(str(exc).strip()[:300] or type(exc).__name__)
                failures += 1
                await sleep_or_stop(self.stop, min(self.interval, backoff(failures)))
            finally:
                if conn is not None:
                    await self._close(conn)

    async def _connect(self, dsn: str) -> psycopg.AsyncConnection[Any]:
        async with asyncio.timeout(self.query_timeout + 5):
            return await psycopg.AsyncConnection.connect(
                dsn,
                autocommit=True,
                application_name=f"pgjobs-leader pid={os.getpid()}",
                # Notice a dead server or network within seconds, not hours.
                keepalives=1,
                keepalives_idle=5,
                keepalives_interval=2,
                keepalives_count=3,
            )

    async def _campaign(self, conn: psycopg.AsyncConnection[Any]) -> None:
        while not self.stop.is_set():
            if await self._query(conn, "leader_try_lock", {"key": LEADER_LOCK_KEY}):
                self.backend_pid = conn.info.backend_pid
                self.terms += 1
                self.elected.set()
                self._log.info("leader.elected", backend_pid=self.backend_pid, term=self.terms)
                await self._lead(conn)
                if not self.is_leader:
                    return  # lost: start again on a fresh connection
                await self._resign(conn)
                return
            await sleep_or_stop(self.stop, self.interval * random.uniform(0.8, 1.2))

    async def _lead(self, conn: psycopg.AsyncConnection[Any] | None) -> None:
        """Run the duties as they come due, until stopped or the lock is lost."""
        loop = asyncio.get_running_loop()
        for duty in self.duties:
            duty.next_at = loop.time()
        while not self.stop.is_set():
            for duty in sorted(self.duties, key=lambda d: d.next_at):
                if duty.next_at > loop.time() or self.stop.is_set():
                    continue
                if conn is not None and not await self._holds(conn):
                    self._step_down("the lock is no longer held by this session")
                    return
                duty.reschedule(loop.time(), await self._run_duty(duty))
            soonest = min((d.next_at for d in self.duties), default=loop.time() + self.max_sleep)
            pause = min(self.max_sleep, max(0.0, soonest - loop.time()))
            await sleep_or_stop(self.stop, pause)

    async def _run_duty(self, duty: Duty) -> float | None:
        try:
            wanted = await duty.run()
        except CONNECTION_ERRORS as exc:
            self.outage.failed(f"leader.{duty.name}", exc)
            return None
        except Exception as exc:
            # A bug or an unexpected database error in one duty must not end
            # the others, nor leadership.
            self._log.exception("leader.duty_failed", duty=duty.name, error=str(exc)[:300])
            return None
        self.outage.ok()
        return wanted

    async def _holds(self, conn: psycopg.AsyncConnection[Any]) -> bool:
        return bool(await self._query(conn, "leader_check", {"classid": _CLASSID, "objid": _OBJID}))

    async def _query(
        self, conn: psycopg.AsyncConnection[Any], name: str, params: dict[str, Any]
    ) -> object:
        async with asyncio.timeout(self.query_timeout), conn.cursor(row_factory=dict_row) as cur:
            await cur.execute(_sql.psycopg(name), params)
            row = await cur.fetchone()
        return row["answer"] if row else None

    def _step_down(self, reason: str) -> None:
        if self.is_leader:
            self.elected.clear()
            self._log.warning("leader.lost", backend_pid=self.backend_pid, reason=reason)
            self.backend_pid = None

    async def _resign(self, conn: psycopg.AsyncConnection[Any]) -> None:
        self.elected.clear()
        try:
            await self._query(conn, "leader_unlock", {"key": LEADER_LOCK_KEY})
        except (*CONNECTION_ERRORS, TimeoutError):
            pass  # closing the connection frees the lock too
        self._log.info("leader.resigned", backend_pid=self.backend_pid)
        self.backend_pid = None

    async def _close(self, conn: psycopg.AsyncConnection[Any]) -> None:
        try:
            async with asyncio.timeout(2):
                await conn.close()
        except (*CONNECTION_ERRORS, TimeoutError):
            pass


def leader_for(
    pool: AsyncConnectionPool[Any],
    config: WorkerConfig,
    dsn: str,
    stop: asyncio.Event,
    outage: Outage,
    worker_id: int | None = None,
) -> Leader:
    """The Leader of a worker, with its duties: cron firing, rescuer and pruner.

    The lock is held on `config.leader_dsn` if set, else on `dsn`; a poll-only
    worker (config.listen False) without a leader_dsn runs lockless, because
    its `dsn` may go through a transaction-pooling PgBouncer, where a session
    lock would be taken on a server connection that other clients then share.
    """
    from pgjobs.worker._pruner import Pruner
    from pgjobs.worker._rescuer import Rescuer
    from pgjobs.worker._scheduler import Scheduler

    scheduler = Scheduler(pool, config.cron_grace)
    rescuer = Rescuer(pool, config.stale_after)
    pruner = Pruner(
        pool,
        {
            "succeeded": config.retention_succeeded,
            "cancelled": config.retention_cancelled,
            "failed": config.retention_failed,
        },
        config.stale_after,
        batch=config.prune_batch,
        stop=stop,
    )

    async def prune() -> None:
        await pruner.run_once()

    duties = [
        Duty("scheduler", scheduler.run_once, interval=1.0, jitter=0.0),
        Duty("rescuer", rescuer.run_once, interval=config.rescue_interval),
        Duty("pruner", prune, interval=config.prune_interval),
    ]
    lock_dsn = config.leader_dsn or (dsn if config.listen else None)
    return Leader(
        lock_dsn, duties, stop, outage, interval=config.leader_interval, worker_id=worker_id
    )
