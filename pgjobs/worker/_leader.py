"""Leader: one worker per database holds an advisory lock and runs the maintenance duties.

The leader is whoever holds the session-level advisory lock LEADER_LOCK_KEY
(pgjobs/_names.py) on a dedicated connection, outside the pool. Every worker
runs a Leader: while it does not lead, it tries `pg_try_advisory_lock` every
`interval` seconds (±20%). Once it leads, it runs its duties (cron firing,
rescuer, pruner, the unserved-queues log), each on its own clock, and
checks in `pg_locks` before each duty that its session still holds the lock.

Leadership ends when the connection does: the process dies (even by
SIGKILL, the server sees the socket close and frees the lock at once), its
backend is terminated, or a query on it fails or hangs for `query_timeout`.
Another worker then takes over within about `interval` seconds. (A network
partition that leaves the server's backend alive holds the lock until the
server notices the dead peer: TCP keepalives, or tcp_keepalives_idle.)

A worker that does not lead holds no connection for it: each try first
asks, through the worker's pool, whether the lock is free (a
transaction-level try of the same key, released at once), and only then
connects and tries for the session lock, closing the connection again if
another worker was quicker. The leader runs its duties on its own
connection (LeaderSession), so that a long one (a VACUUM, a partition
detach waiting for its lock) never holds up the worker's pool.

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
import contextlib
import os
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any

import psycopg
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

from pgjobs import _connect, _sql
from pgjobs._log import get_logger
from pgjobs._names import LEADER_LOCK_CLASSID, LEADER_LOCK_KEY, LEADER_LOCK_OBJID
from pgjobs.worker._config import WorkerConfig
from pgjobs.worker._db import CONNECTION_ERRORS, ConnectionSource, Outage, backoff, fetch
from pgjobs.worker._service import Service


class LeaderSession:
    """The leader's connection, lent to its duties the way the pool lends one.

    Each `connection()` block runs in a transaction that commits at its end
    (rolls back on an error), as a pool's does; the connection is in
    autocommit again afterwards, for the lock's own statements. Only one
    block at a time: the duties run one after another anyway.
    """

    def __init__(self) -> None:
        #: Set by the Leader while it is connected.
        self.conn: psycopg.AsyncConnection[Any] | None = None
        self._lock = asyncio.Lock()

    @contextlib.asynccontextmanager
    async def connection(
        self,
        timeout: float | None = None,  # noqa: ASYNC109 (the pool's signature; never waits)
    ) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
        """The leader's connection, in a transaction for the block.

        Raises:
            psycopg.OperationalError: the leader is not connected.
        """
        async with self._lock:
            conn = self.conn
            if conn is None or conn.closed:
                raise psycopg.OperationalError("the leader's connection is closed")
            await conn.set_autocommit(False)
            try:
                yield conn
                await conn.commit()
            except BaseException:
                with contextlib.suppress(psycopg.Error):
                    await conn.rollback()
                raise
            finally:
                with contextlib.suppress(psycopg.Error):
                    await conn.set_autocommit(True)


class Leader(Service):
    """Elects one leader per database and runs the duties while leading.

    A pass connects if not connected; or, not leading, tries once to take
    the lock (the next try comes after `interval` seconds, ±20%); or,
    leading, runs the duties that are due, checking before each that the
    lock is still held. Each duty is a Service on its own clock (its
    interval and jitter, or the pause its pass asks for), run by its
    `run_once`; a duty that fails is logged and tried again on its clock.

    Args:
        dsn: where to hold the lock: a direct or session-pooled address. None
            runs lockless (see the module docstring).
        duties: what the leader does.
        outage: shared with the worker's other services.
        interval: seconds between attempts to become leader.
        worker_id: for the log lines.
        query_timeout: a query on the leader connection that takes longer
            ends the leadership (a half-open connection must not hang it).
        max_sleep: the longest the leader sleeps between duty checks.
        session: where the duties run, when they run on the leader's
            connection: connected and disconnected with it.
        lock_free: asks (through the pool) whether the lock is free; while it
            is not, a follower holds no connection. None: a follower keeps its
            connection and tries the lock on it.
    """

    name = "leader"
    # A query on the lock's connection that hangs is as good as lost.
    recoverable = (*CONNECTION_ERRORS, TimeoutError)

    def __init__(
        self,
        dsn: str | None,
        duties: Sequence[Service],
        outage: Outage,
        *,
        interval: float = 5.0,
        worker_id: int | None = None,
        query_timeout: float = 5.0,
        max_sleep: float = 1.0,
        session: LeaderSession | None = None,
        lock_free: Callable[[], Awaitable[bool]] | None = None,
    ) -> None:
        super().__init__(outage=outage, interval=interval, jitter=0.2)
        self.backoff_cap = min(interval, self.backoff_cap)
        self.dsn = dsn
        self.duties = list(duties)
        self.query_timeout = query_timeout
        self.max_sleep = max_sleep
        self.session = session
        self.lock_free = lock_free
        self.elected = asyncio.Event()
        self.backend_pid: int | None = None
        self.terms = 0
        self._conn: psycopg.AsyncConnection[Any] | None = None
        # When each duty is next due, on the event loop's clock.
        self._due = [0.0] * len(self.duties)
        self._log = get_logger(worker_id=worker_id, pid=os.getpid())

    @property
    def is_leader(self) -> bool:
        """Whether this process leads now (as far as it knows)."""
        return self.elected.is_set()

    async def run_once(self) -> float | None:
        """Connect; or try once to become leader; or, leading, run the duties that are due.

        Returns:
            The pause before the next pass: 0 after connecting or losing the
            lock, None (the jittered interval) after a failed try, and while
            leading, until the next duty is due (at most `max_sleep`).
        """
        if self.dsn is None:
            if not self.is_leader:
                self._log.warning(
                    "leader.lockless",
                    note="no session connection for the leader lock: this worker runs the "
                    "leader's duties itself; cron ticks still fire once (compare-and-set)",
                )
                self._elected()
            return await self._lead(None)
        if self._conn is None:
            if self.lock_free is not None and not await self.lock_free():
                return None  # another worker leads: no connection meanwhile
            self._conn = await self._connect(self.dsn)
            if self.session is not None:
                self.session.conn = self._conn
            if self.lock_free is None:
                return 0
        conn = self._conn
        if not self.is_leader:
            if not await self._query(conn, "leader_try_lock", {"key": LEADER_LOCK_KEY}):
                if self.lock_free is not None:
                    await self._disconnect()  # another worker was quicker
                return None
            self.backend_pid = conn.info.backend_pid
            self._elected()
            self._log.info("leader.elected", backend_pid=self.backend_pid, term=self.terms)
        return await self._lead(conn)

    def _elected(self) -> None:
        self.terms += 1
        self.elected.set()
        now = asyncio.get_running_loop().time()
        self._due = [now] * len(self.duties)

    async def _lead(self, conn: psycopg.AsyncConnection[Any] | None) -> float:
        """Run the duties that are due; returns the seconds until the next is."""
        loop = asyncio.get_running_loop()
        for index in sorted(range(len(self.duties)), key=self._due.__getitem__):
            if self._due[index] > loop.time() or self.stopping:
                continue
            if conn is not None and not await self._holds(conn):
                self._step_down("the lock is no longer held by this session")
                await self._disconnect()
                return 0  # start again on a fresh connection
            duty = self.duties[index]
            wanted = duty.pause_for(await self._run_duty(duty))
            self._due[index] = loop.time() + max(0.0, wanted or 0.0)
        soonest = min(self._due, default=loop.time() + self.max_sleep)
        return min(self.max_sleep, max(0.0, soonest - loop.time()))

    async def _run_duty(self, duty: Service) -> float | None:
        try:
            wanted = await duty.run_once()
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

    def stop(self) -> None:
        """Step down and return; a duty's running pass is cut short where it can be."""
        super().stop()
        for duty in self.duties:
            duty.stop()

    async def on_lost(self, exc: BaseException, failures: int) -> float | None:
        """Step down, drop the connection, and campaign again after a backoff."""
        self._step_down(str(exc).strip()[:300] or type(exc).__name__)
        await self._disconnect()
        return backoff(failures, cap=self.backoff_cap)

    async def close(self) -> None:
        """Resign if leading (so another worker takes over at once), and disconnect."""
        conn = self._conn
        if conn is not None and self.is_leader:
            await self._resign(conn)
        await self._disconnect()
        self.elected.clear()

    async def _disconnect(self) -> None:
        conn, self._conn = self._conn, None
        if self.session is not None:
            self.session.conn = None
        if conn is not None:
            await self._close(conn)

    async def _connect(self, dsn: str) -> psycopg.AsyncConnection[Any]:
        async with asyncio.timeout(self.query_timeout + 5):
            # Its keepalives notice a dead server or network within seconds.
            return await _connect.connect_async(dsn, _connect.LEADER, autocommit=True)

    async def _holds(self, conn: psycopg.AsyncConnection[Any]) -> bool:
        return bool(
            await self._query(
                conn, "leader_check", {"classid": LEADER_LOCK_CLASSID, "objid": LEADER_LOCK_OBJID}
            )
        )

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
    outage: Outage,
    worker_id: int | None = None,
) -> Leader:
    """The Leader of a worker, with its duties: cron, rescuer, pruner, unserved queues, breakers.

    The lock is held on `config.leader_dsn` if set, else on `dsn`; a poll-only
    worker (config.listen False) without a leader_dsn runs lockless, because
    its `dsn` may go through a transaction-pooling PgBouncer, where a session
    lock would be taken on a server connection that other clients then share.
    """
    from pgjobs.worker._breakers import BreakerTrials
    from pgjobs.worker._pruner import Pruner
    from pgjobs.worker._rescuer import Rescuer
    from pgjobs.worker._scheduler import Scheduler
    from pgjobs.worker._unserved import UnservedQueues
    from pgjobs.worker._vacuumer import Vacuumer

    lock_dsn = config.leader_dsn or (dsn if config.listen else None)
    # With a lock, the duties run on the lock's connection; lockless, on the pool.
    session = LeaderSession() if lock_dsn is not None else None
    source: ConnectionSource = session if session is not None else pool
    retention = {
        "succeeded": config.retention_succeeded,
        "cancelled": config.retention_cancelled,
        "failed": config.retention_failed,
    }
    duties: list[Service] = [
        Scheduler(source, config.cron_grace, outage=outage),
        Rescuer(
            source,
            config.stale_after,
            interval=config.rescue_interval,
            grace=config.liveness_grace,
            outage=outage,
        ),
        Pruner(
            source,
            retention,
            config.stale_after,
            step=config.partition_interval,
            ahead=config.partition_ahead,
            batch=config.prune_batch,
            interval=config.prune_interval,
            outage=outage,
        ),
        UnservedQueues(
            source, config.stale_after, interval=config.unserved_interval, outage=outage
        ),
        # As often as the rescuer: a trial starts within about that of its cooldown's end.
        BreakerTrials(source, interval=config.rescue_interval, outage=outage),
    ]
    if config.vacuum_interval is not None:
        duties.append(
            Vacuumer(
                source,
                dead_rows=config.vacuum_dead_rows,
                interval=config.vacuum_interval,
                outage=outage,
            )
        )
    return Leader(
        lock_dsn,
        duties,
        outage,
        interval=config.leader_interval,
        worker_id=worker_id,
        session=session,
        lock_free=(lambda: lock_free(pool)) if lock_dsn is not None else None,
    )


async def lock_free(pool: ConnectionSource) -> bool:
    """Whether no session holds the leader lock now (pgjobs/sql/leader_lock_free.sql)."""
    rows = await fetch(pool, "leader_lock_free", {"key": LEADER_LOCK_KEY})
    return bool(rows[0]["answer"])
