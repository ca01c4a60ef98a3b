"""Listener: a dedicated LISTEN connection that wakes the fetcher when jobs arrive."""

from __future__ import annotations

import asyncio
import contextlib
import os

import psycopg

from pgjobs import _sql
from pgjobs._log import get_logger
from pgjobs.worker._db import CONNECTION_ERRORS, Outage, backoff

#: The longest pause between reconnect attempts: one cheap connection attempt
#: a second per worker while the server is down, in exchange for wake-ups
#: that resume within a second of its return (the pool and the leader back
#: off further; polling covers them meanwhile).
RECONNECT_CAP = 1.0


class Listener:
    """Holds one connection outside the pool, LISTENing on the `pgjobs` channel.

    Each notification's payload is a queue name; one of ours sets `wake`. The
    connection is health-checked while quiet and re-opened with backoff when
    it drops. After every (re)connect `wake` is set, because notifications
    sent while it was down are lost and the fetcher must look for itself.
    Reconnect attempts are at most `RECONNECT_CAP` seconds apart, so that
    wake-ups resume within about a second of the server's return.
    """

    def __init__(
        self,
        dsn: str,
        queues: tuple[str, ...],
        wake: asyncio.Event,
        stop: asyncio.Event,
        outage: Outage,
        health_interval: float = 10.0,
    ) -> None:
        self.dsn = dsn
        self.queues = frozenset(queues)
        self.wake = wake
        self.stop = stop
        self.outage = outage
        self.health_interval = health_interval
        self.connected = asyncio.Event()
        self._log = get_logger()

    async def run(self) -> None:
        """Listen until `stop` is set, reconnecting as needed."""
        failures = 0
        while not self.stop.is_set():
            try:
                conn = await psycopg.AsyncConnection.connect(
                    self.dsn,
                    autocommit=True,
                    # Operators (and the chaos tests) find it in pg_stat_activity.
                    application_name=f"pgjobs-listener pid={os.getpid()}",
                )
            except CONNECTION_ERRORS as exc:
                self.outage.failed("listener", exc)
                failures += 1
                await self._pause(backoff(failures, cap=RECONNECT_CAP))
                continue
            try:
                await conn.execute(_sql.psycopg("listen"), {})
                failures = 0
                self.connected.set()
                self.wake.set()
                await self._listen(conn)
            except CONNECTION_ERRORS as exc:
                self.connected.clear()
                self.outage.failed("listener", exc)
                failures += 1
                await self._pause(backoff(failures, cap=RECONNECT_CAP))
            finally:
                self.connected.clear()
                await conn.close()

    async def _listen(self, conn: psycopg.AsyncConnection[tuple[object, ...]]) -> None:
        while not self.stop.is_set():
            async for notify in conn.notifies(timeout=self.health_interval):
                if notify.payload in self.queues:
                    self.wake.set()
                if self.stop.is_set():
                    return
            # Quiet for a while: prove the connection still works, so a
            # half-open TCP connection cannot leave us deaf.
            await conn.execute(_sql.psycopg("health_check"), {})

    async def _pause(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.stop.wait(), seconds)
