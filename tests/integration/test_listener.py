"""The listener on a real PostgreSQL: it wakes the fetcher for its queues, and reconnects."""

from __future__ import annotations

import asyncio
import os
from typing import Any

import psycopg

from pgjobs._names import WAKE_CHANNEL as CHANNEL
from pgjobs.worker._db import Outage
from pgjobs.worker._listener import Listener

Conn = psycopg.Connection[tuple[Any, ...]]

#: This process's listener backends (the listener names itself with our pid).
OURS = "SELECT pid FROM pg_stat_activity WHERE application_name = %s"


def our_listeners(conn: Conn) -> list[int]:
    return [row[0] for row in conn.execute(OURS, (f"pgjobs-listener pid={os.getpid()}",))]


def test_a_pass_connects_and_then_wakes_only_for_its_queues(dsn: str, conn: Conn) -> None:
    async def main() -> None:
        wake = asyncio.Event()
        listener = Listener(dsn, ("default", "mail"), wake, Outage(), health_interval=0.1)
        try:
            assert await listener.run_once() == 0
            assert listener.connected.is_set()
            assert wake.is_set()  # notifications sent before were lost: look anyway
            assert len(our_listeners(conn)) == 1
            wake.clear()
            conn.execute("SELECT pg_notify(%s, 'other')", (CHANNEL,))
            await listener.run_once()
            assert not wake.is_set()
            conn.execute("SELECT pg_notify(%s, 'mail')", (CHANNEL,))
            await listener.run_once()
            assert wake.is_set()
        finally:
            await listener.close()
        assert not listener.connected.is_set()
        assert our_listeners(conn) == []

    asyncio.run(main())


def test_a_listener_whose_backend_is_terminated_reconnects(dsn: str, conn: Conn) -> None:
    async def main() -> None:
        wake = asyncio.Event()
        outage = Outage()
        listener = Listener(dsn, ("default",), wake, outage, health_interval=0.05)
        task = asyncio.create_task(listener.run())
        try:
            await asyncio.wait_for(listener.connected.wait(), 10)
            (first,) = our_listeners(conn)
            wake.clear()
            conn.execute("SELECT pg_terminate_backend(%s)", (first,))
            await asyncio.wait_for(wake.wait(), 10)  # set again on reconnecting
            assert listener.connected.is_set()
            (second,) = our_listeners(conn)
            assert second != first
            assert outage.outages == 1
        finally:
            listener.stop()
            await asyncio.gather(task, return_exceptions=True)
        assert our_listeners(conn) == []

    asyncio.run(main())


def test_stop_ends_a_pass_that_waits_for_notifications(dsn: str) -> None:
    async def main() -> None:
        listener = Listener(dsn, ("default",), asyncio.Event(), Outage(), health_interval=3600)
        task = asyncio.create_task(listener.run())
        await asyncio.wait_for(listener.connected.wait(), 10)
        listener.stop()
        await asyncio.wait_for(asyncio.gather(task, return_exceptions=True), 10)
        assert not listener.connected.is_set()

    asyncio.run(main())
