"""Listener: a dedicated LISTEN connection that wakes the fetcher when jobs arrive."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import psycopg
from psycopg.rows import dict_row

from pgjobs import _connect, _sql
from pgjobs._log import get_logger
from pgjobs._names import CONTROL_CHANNEL, LIVENESS_LOCK_CLASSID, liveness_lock_objid
from pgjobs.worker._config import EVERY_QUEUE
from pgjobs.worker._db import Outage
from pgjobs.worker._service import Service

#: The longest pause between reconnect attempts: one cheap connection attempt
#: a second per worker while the server is down, in exchange for wake-ups
#: that resume within a second of its return (the pool and the leader back
#: off further; polling covers them meanwhile).
RECONNECT_CAP = 1.0


class Listener(Service):
    """Holds one connection outside the pool, LISTENing on the `pgjobs` channel.

    Each notification's payload is a queue name; one of ours sets `wake`
    (any, for a worker of every queue: queues ("*",)). A
    pass connects (and LISTENs) if not connected, or else takes the
    notifications of up to `health_interval` seconds and then checks that the
    connection still works, so a half-open TCP connection cannot leave it
    deaf. A lost connection is re-opened with backoff. After every
    (re)connect `wake` is set, because notifications sent while it was down
    are lost and the fetcher must look for itself. Reconnect attempts are at
    most `RECONNECT_CAP` seconds apart, so that wake-ups resume within about
    a second of the server's return.

    With `worker_id`, the connection also holds the worker's liveness lock
    (pgjobs/_names.py, LIVENESS_LOCK_CLASSID; pgjobs/sql/liveness_lock.sql),
    which the server frees the moment this process or connection dies, and
    by which the leader's rescuer tells a dead worker within about a second.
    It is taken first thing on every (re)connect, before LISTEN and before
    `connected` is set (so the worker claims nothing before holding it), and
    checked at every health check. A lock still held by the previous,
    not yet ended backend of this listener is tried again every
    `lock_retry` seconds until it is ours.
    """

    name = "listener"
    backoff_cap = RECONNECT_CAP

    def __init__(
        self,
        dsn: str,
        queues: tuple[str, ...],
        wake: asyncio.Event,
        outage: Outage,
        health_interval: float = 10.0,
        *,
        worker_id: int | None = None,
        lock_retry: float = 0.1,
        on_cancel: Callable[[int], object] | None = None,
    ) -> None:
        super().__init__(outage=outage)
        self.dsn = dsn
        self.queues = frozenset(queues)
        self._every = EVERY_QUEUE in self.queues
        self.wake = wake
        self.health_interval = health_interval
        self.worker_id = worker_id
        self.lock_retry = lock_retry
        #: Called with a job id when pgjobs.cancel() asks this worker to stop
        #: a running job (the `pgjobs_control` channel).
        self.on_cancel = on_cancel
        #: Whether this connection held the liveness lock at its last check.
        self.holds_lock = False
        self.connected = asyncio.Event()
        self._conn: psycopg.AsyncConnection[tuple[object, ...]] | None = None
        self._runner: asyncio.Task[None] | None = None
        self._log = get_logger()

    async def run_once(self) -> float:
        """Connect and LISTEN; or, once connected, take notifications for a while.

        Returns:
            0: the next pass follows at once.
        """
        if self._conn is None:
            await self._connect()
            return 0
        conn = self._conn
        lockless = self.worker_id is not None and not self.holds_lock
        async for notify in conn.notifies(
            timeout=self.lock_retry if lockless else self.health_interval
        ):
            if notify.channel == CONTROL_CHANNEL:
                self._control(notify.payload)
            elif self._every or notify.payload in self.queues:
                self.wake.set()
            if self.stopping:
                return 0
        # Quiet for a while: prove the connection still works (and, with a
        # worker id, that it holds the lock).
        if self.worker_id is None:
            await conn.execute(_sql.psycopg("health_check"), {})
        else:
            await self._hold_lock(conn, self.worker_id)
        return 0

    async def _connect(self) -> None:
        # Operators (and the chaos tests) find it in pg_stat_activity.
        conn = await _connect.connect_async(self.dsn, _connect.LISTENER, autocommit=True)
        try:
            if self.worker_id is not None:
                await self._hold_lock(conn, self.worker_id)
            await conn.execute(_sql.psycopg("listen"), {})
            if self.on_cancel is not None and self.worker_id is not None:
                await conn.execute(_sql.psycopg("listen_control"), {})
        except BaseException:
            await conn.close()
            raise
        self._conn = conn
        self.connected.set()
        self.wake.set()

    def _control(self, payload: str) -> None:
        """Act on a control message meant for this worker: 'cancel WORKER_ID JOB_ID'."""
        parts = payload.split()
        if len(parts) != 3 or parts[0] != "cancel" or self.on_cancel is None:
            return
        try:
            worker_id, job_id = int(parts[1]), int(parts[2])
        except ValueError:
            return
        if worker_id == self.worker_id:
            self.on_cancel(job_id)

    async def _hold_lock(
        self, conn: psycopg.AsyncConnection[tuple[object, ...]], worker_id: int
    ) -> None:
        """Take the liveness lock unless this session holds it, and mark the worker's row."""
        async with conn.cursor(row_factory=dict_row) as cur:
            await cur.execute(
                _sql.psycopg("liveness_lock"),
                {
                    "classid": LIVENESS_LOCK_CLASSID,
                    "worker_id": worker_id,
                    "objid": liveness_lock_objid(worker_id),
                },
            )
            row = await cur.fetchone()
        held = bool(row and row["held"])
        if not held:
            # The previous backend of this listener has not ended yet.
            self._log.debug("listener.liveness_lock_busy", worker_id=worker_id)
        self.holds_lock = held

    async def run(self) -> None:
        """Listen until `stop`, reconnecting as needed."""
        self._runner = asyncio.current_task()
        try:
            await super().run()
        finally:
            self._runner = None

    def stop(self) -> None:
        """Stop listening, at once: the running pass is cancelled.

        A pass may wait `health_interval` seconds for a notification, or hang
        connecting to a server that is down; nothing is lost by cutting it short.
        """
        super().stop()
        if self._runner is not None:
            self._runner.cancel()

    async def on_lost(self, exc: BaseException, failures: int) -> float | None:
        """Drop the connection; the next pass opens a new one, after a backoff."""
        await self._disconnect()
        return await super().on_lost(exc, failures)

    async def close(self) -> None:
        """Close the connection."""
        await self._disconnect()

    async def _disconnect(self) -> None:
        self.connected.clear()
        self.holds_lock = False
        conn, self._conn = self._conn, None
        if conn is not None:
            await conn.close()
