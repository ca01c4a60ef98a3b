"""The Service loop, without a database: cadence, lost connections, failures, stopping."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import psycopg
import pytest

from pgjobs.worker._db import Outage
from pgjobs.worker._service import Service


class Scripted(Service):
    """Each pass runs the next step of its script; after the last, it stops itself."""

    name = "scripted"
    backoff_cap = 0.001

    def __init__(
        self,
        steps: list[Callable[[], float | None]],
        *,
        interval: float | None = None,
        jitter: float = 0.0,
        wake: asyncio.Event | None = None,
    ) -> None:
        super().__init__(outage=Outage(), interval=interval, jitter=jitter, wake=wake)
        self.steps = list(steps)
        self.passes = 0
        self.closed = False

    async def run_once(self) -> float | None:
        self.passes += 1
        step = self.steps.pop(0)
        if not self.steps:
            self.stop()
        return step()

    async def close(self) -> None:
        self.closed = True


def lost() -> float | None:
    raise psycopg.OperationalError("server closed the connection unexpectedly")


def at_once() -> float | None:
    return 0


def run(service: Service) -> None:
    asyncio.run(asyncio.wait_for(service.run(), 10))


def test_lost_connections_are_one_outage_and_the_loop_goes_on() -> None:
    service = Scripted([lost, lost, lost, at_once])
    run(service)
    assert service.passes == 4
    assert service.outage.outages == 1
    assert service.closed


def test_any_other_error_ends_the_loop_and_is_raised() -> None:
    def broken() -> float | None:
        raise psycopg.errors.FeatureNotSupported("cached plan must not change result type")

    service = Scripted([at_once, broken, at_once])
    with pytest.raises(psycopg.errors.FeatureNotSupported):
        run(service)
    assert service.passes == 2
    assert service.closed  # what it holds is released all the same


def test_stop_ends_a_pause_at_once() -> None:
    async def main() -> int:
        # Every pass asks for the regular cadence: an hour.
        service = Scripted([lambda: None] * 5, interval=3600)
        task = asyncio.create_task(service.run())
        await asyncio.sleep(0)
        service.stop()
        await asyncio.wait_for(task, 10)
        return service.passes

    assert asyncio.run(main()) == 1


def test_wake_starts_the_next_pass_early() -> None:
    async def main() -> int:
        wake = asyncio.Event()
        service = Scripted([lambda: None] * 2, interval=3600, wake=wake)
        task = asyncio.create_task(service.run())
        await asyncio.sleep(0)
        wake.set()
        await asyncio.wait_for(task, 10)  # the second, last pass stops it
        return service.passes

    assert asyncio.run(main()) == 2


def test_a_service_stopped_before_it_runs_runs_no_pass() -> None:
    service = Scripted([at_once])
    service.stop()
    run(service)
    assert service.passes == 0
    assert service.closed


def test_the_regular_pause_varies_within_its_jitter() -> None:
    service = Scripted([at_once], interval=10.0, jitter=0.2)
    pauses = [service.pause_for(None) for _ in range(200)]
    assert all(p is not None and 8.0 <= p <= 12.0 for p in pauses)
    assert len(set(pauses)) > 1
    assert service.pause_for(0.5) == 0.5  # what a pass asks for is not jittered
    assert Scripted([at_once], interval=10.0).pause_for(None) == 10.0
