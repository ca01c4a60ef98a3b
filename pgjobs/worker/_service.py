"""Service: the shape every loop of the worker shares: one pass, a cadence, a stop."""

from __future__ import annotations

import abc
import asyncio
import contextlib
import random
from typing import ClassVar

from pgjobs.worker._db import CONNECTION_ERRORS, Outage, backoff


class Service(abc.ABC):
    """A named piece of the worker's work, done in passes until it is stopped.

    `run_once` does one pass (one claim, one batch of outcomes, one beat, one
    round of the leader's duties) and returns the pause it wants before the
    next one: seconds, 0 for at once, or None for its regular cadence. `run`
    calls it on that cadence until `stop`, and is where a lost connection is
    ridden out, for every service alike: the loss is reported (`on_lost`),
    the next pass waits a backoff, and the loop goes on. Any other error ends
    `run`; the worker treats that as the failure of the whole worker.

    The regular cadence is `interval` seconds, stretched or shrunk at random
    by up to `jitter` (a fraction) so that workers do not move in lockstep,
    cut short when `wake` is set; with no interval, only `wake` ends it.
    Services that wait on something else override `wait`.

    Args:
        outage: shared by the worker's services, so an outage is logged once.
        interval: the regular pause between passes, in seconds; None waits
            for `wake` alone.
        jitter: the fraction by which each regular pause varies at random.
        wake: set to start the next pass early. `stop` sets it too. Without
            one, the service has its own, which only `stop` sets.
    """

    #: Names the service in logs ("worker.loop_failed", "db.unavailable").
    name: ClassVar[str]
    #: Errors that mean the connection was lost: ridden out, not fatal.
    recoverable: ClassVar[tuple[type[BaseException], ...]] = CONNECTION_ERRORS
    #: The pause before the first pass: None waits one regular pause first.
    start_after: ClassVar[float | None] = 0.0
    #: The longest backoff after a lost connection.
    backoff_cap: float = 5.0

    def __init__(
        self,
        *,
        outage: Outage | None = None,
        interval: float | None = None,
        jitter: float = 0.0,
        wake: asyncio.Event | None = None,
    ) -> None:
        self.outage = outage if outage is not None else Outage()
        self.interval = interval
        self.jitter = jitter
        self._wake = wake if wake is not None else asyncio.Event()
        self._stopping = False

    @abc.abstractmethod
    async def run_once(self) -> float | None:
        """Do one pass of the work.

        Returns:
            The pause before the next pass, in seconds (0: at once), or None
            for the regular cadence.
        """

    async def run(self) -> None:
        """Run passes on the service's cadence until `stop`, riding out lost connections.

        Raises:
            Exception: whatever a pass raised that is not a lost connection.
        """
        failures = 0
        pause = self.start_after
        try:
            while True:
                # A pass that wants the next one at once does not yield here:
                # the fetcher's claim after a full batch is on the hot path.
                if pause != 0:
                    await self.wait(pause)
                if self.done:
                    return
                try:
                    pause = await self.run_once()
                except self.recoverable as exc:
                    failures += 1
                    pause = await self.on_lost(exc, failures)
                else:
                    failures = 0
                    self.outage.ok()
        finally:
            await self.close()

    def stop(self) -> None:
        """Ask `run` to return: at once from a pause, else after the current pass."""
        self._stopping = True
        self._wake.set()

    @property
    def stopping(self) -> bool:
        """Whether `stop` was called."""
        return self._stopping

    @property
    def done(self) -> bool:
        """Whether `run` should return now (once stopping, unless a service has work left)."""
        return self._stopping

    def pause_for(self, wanted: float | None) -> float | None:
        """The pause before the next pass: `wanted`, or one regular pause, with its jitter."""
        if wanted is not None or self.interval is None:
            return wanted
        if not self.jitter:
            return self.interval
        return self.interval * random.uniform(1 - self.jitter, 1 + self.jitter)

    async def wait(self, pause: float | None) -> None:
        """Wait `pause` seconds (None: one regular pause), or until woken or stopped."""
        await self._until_woken(self.pause_for(pause))

    async def sleep(self, seconds: float) -> bool:
        """Sleep within a pass, waking early when woken or stopped; True if stopping."""
        if not self._stopping:
            await self._until_woken(seconds)
        return self._stopping

    async def _until_woken(self, seconds: float | None) -> None:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await self._wake.wait()

    async def on_lost(self, exc: BaseException, failures: int) -> float | None:
        """React to a lost connection, the `failures`-th in a row.

        Returns:
            The pause before the next pass (see `run_once`).
        """
        self.outage.failed(self.name, exc)
        return backoff(failures, cap=self.backoff_cap)

    async def close(self) -> None:
        """Release what the service holds (its connections); `run` calls it last."""
        return  # most services hold nothing of their own
