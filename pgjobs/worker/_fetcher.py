"""Fetcher: claims runnable jobs in batches no larger than the free slots."""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections.abc import Callable
from typing import Any

from psycopg.rows import RowMaker, tuple_row
from psycopg_pool import AsyncConnectionPool

from pgjobs import _rows
from pgjobs.worker._db import Outage, fetch
from pgjobs.worker._dedicated import HotConnection
from pgjobs.worker._outcome import ClaimedJob
from pgjobs.worker._service import Service

#: How often, at most, a busy fetcher goes back to the start of each queue
#: (see `Fetcher.claim`): the longest a job placed before its position, such
#: as a more urgent one, waits while the queue stays busy.
RESCAN_INTERVAL = 0.5
#: A claim from the start may cost this many times its own duration in
#: claims from positions before the next one (at most 1/50 of the fetcher's
#: time goes to going back to the start) ...
RESCAN_COST_FACTOR = 50
#: ... but never more than this many seconds: the longest a job placed
#: before a position waits, while a long transaction makes the start costly.
RESCAN_MAX_PAUSE = 30.0

#: How often, at most, the fetcher asks which of its queues have a limit or
#: keyed jobs (queue_limited.sql): a limit set from SQL is claimed under
#: within about this long, and the fast claims skip the queue meanwhile; a
#: queue's first keyed jobs take turns from then on.
LIMITS_INTERVAL = 1.0

#: The shortest wait for a rate limit's next token: past a hundred tokens a
#: second, a claim takes the several that came meanwhile (the default burst
#: holds a tenth of a second's worth) instead of the fetcher spinning.
MIN_TOKEN_WAIT = 0.01

#: How much before a rate limit's next token the fetcher comes for it. It
#: cannot come exactly on time: its timer fires up to a millisecond late, and
#: the wait it was told counts from before the reply it read. At the default
#: burst of 1 a token taken late is lost for good (the next comes one step
#: after the claim), so it comes this much early for tokens more than
#: MIN_TOKEN_WAIT apart; a claim that is early finds no token and is told
#: the rest of the wait, and the fetcher asks again at once when that is
#: shorter than this lead (a few claims of each waiting worker per token).
TOKEN_LEAD = 0.002

# Claimed rows are read by name at about the cost of reading them by
# position (pgjobs/_rows.py): the claim is on the critical path of every job.
_CLAIMED = _rows.fields_row(ClaimedJob)
_RATE_WAIT = _rows.column_row("rate_wait")
_TURN = _rows.column_row("turn")


def _limited_row(cursor: Any) -> RowMaker[tuple[ClaimedJob | None, float | None, int | None]]:
    """claim_limited.sql's rows as (job, rate_wait, turn).

    Its row that only says when a token comes has every job column NULL,
    the first (the job's id) included: that row gives no job.
    """
    job = _CLAIMED(cursor)
    wait = _RATE_WAIT(cursor)
    turn = _TURN(cursor)

    def make(values: Any) -> tuple[ClaimedJob | None, float | None, int | None]:
        seconds = wait(values)
        if values[0] is None:
            return None, seconds, turn(values)
        return job(values), seconds, turn(values)

    return make


def _keyed_row(cursor: Any) -> RowMaker[tuple[ClaimedJob, int | None]]:
    """claim_keyed.sql's rows as (job, turn)."""
    job = _CLAIMED(cursor)
    turn = _TURN(cursor)

    def make(values: Any) -> tuple[ClaimedJob, int | None]:
        return job(values), turn(values)

    return make


# A position before every job: priorities start at 0 and ids at 1.
_START = (-1, dt.datetime(1, 1, 1, tzinfo=dt.UTC), 0)


class Slots:
    """How many more jobs this worker may run; `freed` fires when one finishes."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.busy = 0
        self.freed = asyncio.Event()

    @property
    def free(self) -> int:
        """Slots not running a job."""
        return self.size - self.busy

    def take(self) -> None:
        """Occupy a slot."""
        self.busy += 1

    def release(self) -> None:
        """Free a slot and wake the fetcher."""
        self.busy -= 1
        self.freed.set()


class Fetcher(Service):
    """The claim loop.

    A pass claims as many jobs as there are free slots and dispatches them.
    The next pass comes at once after a full batch (work remains), when a
    slot frees while every slot is busy, and otherwise on a notification
    (`wake`) or after the poll interval. Before it waits it marks the worker
    as awaiting work and then looks once more: a job committed just before
    the mark did not notify anybody, and that last look finds it.
    """

    name = "fetcher"

    def __init__(
        self,
        pool: AsyncConnectionPool[Any],
        worker_id: int,
        queues: tuple[str, ...],
        slots: Slots,
        wake: asyncio.Event,
        outage: Outage,
        dispatch: Callable[[ClaimedJob], None],
        *,
        listen: bool,
        poll_interval: float,
        hot: HotConnection | None = None,
        ended: Callable[[], list[int]] | None = None,
    ) -> None:
        super().__init__(outage=outage, interval=poll_interval, wake=wake)
        # The jobs this worker has finished whose outcomes are not written
        # yet (the completer's): a limited claim does not count them.
        self.ended = ended if ended is not None else list
        self.pool = pool
        # Claims go over the connection the Worker shares between its
        # fetcher and completer (one of its own when none is given).
        self._owns_hot = hot is None
        self.hot = hot if hot is not None else HotConnection.for_pool(pool)
        self.worker_id = worker_id
        self.queues = list(queues)
        self.slots = slots
        self.wake = wake
        self.dispatch = dispatch
        self.listen = listen
        self.awaiting = False
        #: Claim statements run, for the benchmark and the tests.
        self.claims = 0
        # Per queue, the (priority, run_at, id) of the last job claimed from it.
        self._after: dict[str, tuple[int, dt.datetime, int]] = {}
        # When the next claim should go back to the start (RESCAN_INTERVAL),
        # whether one should as soon as it may (a claim came back short), and
        # the earliest it may (the last one's cost, RESCAN_COST_FACTOR).
        self._rescan_at = 0.0
        self._rescan_wanted = True
        self._rescan_allowed_at = 0.0
        #: Claims that went back to the start, for the tests and the benchmark.
        self.rescans = 0
        #: The queues of this worker with a limit (concurrency, key_concurrency
        #: or a rate), as last read (`claim_within_limits`).
        self.limited: tuple[str, ...] = ()
        #: The queues of this worker without a limit whose queued jobs have
        #: keys, as last read: their keys take turns (claim_keyed.sql).
        self.keyed: tuple[str, ...] = ()
        self._limits_at = 0.0
        self._next_limited = 0
        # Per limited or keyed queue, the turn this worker served last (the
        # hash of a key; None: the first key next).
        self._turns: dict[str, int | None] = {}
        #: When (time.monotonic()) a rate limit that held back the last pass
        #: has its next token; None if no rate held it back.
        self.token_due: float | None = None
        # Whether the pause run_once returned is a wait for a token.
        self._for_token = False
        # Whether the last token waited for was more than MIN_TOKEN_WAIT away.
        self._slow_tokens = False

    async def claim(self, limit: int, queues: list[str] | None = None) -> list[ClaimedJob]:
        """Claim up to `limit` jobs in one statement (claim.sql; claim_one_queue.sql for one queue).

        `queues` (default: all this worker's) are those to claim from.

        Each queue's search starts after the last job claimed from it, so a
        claim reads about `limit` index entries however many jobs were
        claimed before. Jobs that belong before that position (a more urgent
        job enqueued during a backlog, a job given back by a worker, a
        scheduled job come due) are found by going back to the start: after
        a claim that found fewer jobs than it asked for, and at least every
        RESCAN_INTERVAL seconds.

        Going back to the start is cheap (well under a millisecond) while
        vacuum keeps up. While a long transaction holds the xmin horizon, no
        index entry of a job claimed since it began can be removed, and a
        claim from the start reads every one of them: at thousands of jobs
        a second, millions, and seconds a claim. Such claims are therefore
        spaced by their own cost: after one that took d seconds, the next
        waits RESCAN_COST_FACTOR * d (at most RESCAN_MAX_PAUSE), and claims
        meanwhile go on from their positions, where new jobs are.
        """
        self.claims += 1
        now = time.monotonic()
        rescan = (self._rescan_wanted or now >= self._rescan_at) and now >= self._rescan_allowed_at
        if rescan:
            self._after.clear()
            self._rescan_wanted = False
            self._rescan_at = now + RESCAN_INTERVAL
            self.rescans += 1
        if queues is None:
            queues = self.queues
        if len(queues) == 1:
            (queue,) = queues
            after_priority, after_run_at, after_id = self._after.get(queue, _START)
            jobs = await self.hot.fetch(
                "claim_one_queue",
                {
                    "queue": queue,
                    "after_priority": after_priority,
                    "after_run_at": after_run_at,
                    "after_id": after_id,
                    "limit": limit,
                    "worker_id": self.worker_id,
                },
                _CLAIMED,
            )
        else:
            starts = [self._after.get(queue, _START) for queue in queues]
            jobs = await self.hot.fetch(
                "claim",
                {
                    "queues": queues,
                    "after_priorities": [start[0] for start in starts],
                    "after_run_ats": [start[1] for start in starts],
                    "after_ids": [start[2] for start in starts],
                    "limit": limit,
                    "worker_id": self.worker_id,
                },
                _CLAIMED,
            )
        if rescan:
            took = time.monotonic() - now
            self._rescan_allowed_at = now + min(RESCAN_MAX_PAUSE, took * RESCAN_COST_FACTOR)
        for job in jobs:
            position = (job.priority, job.run_at, job.id)
            if position > self._after.get(job.queue, _START):
                self._after[job.queue] = position
        if len(jobs) < limit:
            self._rescan_wanted = True
        return jobs

    async def claim_within_limits(self, limit: int) -> list[ClaimedJob]:
        """Claim up to `limit` jobs: `claim` for most queues, a statement each for the others.

        Which queues have a limit, and which have keyed jobs, is read at
        start and then at most every LIMITS_INTERVAL seconds. The fast claim
        skips limited queues by itself, so a limit set from SQL is never
        exceeded before it is read. Each limited queue takes its own
        statement (claim_limited.sql), which lets one claimer at a time
        count that queue's running jobs (leaving out those this worker has
        finished whose outcomes are not written yet: `ended`); each queue with keyed jobs and no
        limit takes one too (claim_keyed.sql), in which its keys take turns
        starting after the last this worker served. They are asked in turn,
        starting one further each pass, with what slots remain. A queue
        whose rate limit held its claim back says when its next token is
        due, and `token_due` keeps the earliest (see `run_once`).
        """
        self.token_due = None
        now = time.monotonic()
        if now >= self._limits_at:
            rows = await self.hot.fetch("queue_limited", {"queues": self.queues}, tuple_row)
            self.limited = tuple(str(name) for name, limited in rows if limited)
            self.keyed = tuple(str(name) for name, limited in rows if not limited)
            self._limits_at = now + LIMITS_INTERVAL
        if not self.limited and not self.keyed:
            return await self.claim(limit)
        if self.limited:
            # A job of this worker that ends from now on frees room in its
            # queue's limit, and wakes the wait (see `wait`).
            self.slots.freed.clear()
        own = self.limited + self.keyed
        fast = [queue for queue in self.queues if queue not in own]
        jobs = await self.claim(limit, fast) if fast else []
        start = self._next_limited % len(own)
        self._next_limited = start + 1
        for queue in own[start:] + own[:start]:
            if len(jobs) >= limit:
                break
            self.claims += 1
            params = {
                "queue": queue,
                "limit": limit - len(jobs),
                "worker_id": self.worker_id,
                "after_turn": self._turns.get(queue),
            }
            if queue in self.keyed:
                for job, turn in await self.hot.fetch("claim_keyed", params, _keyed_row):
                    jobs.append(job)
                    self._turns[queue] = turn
                continue
            params["ended"] = self.ended()
            rows = await self.hot.fetch("claim_limited", params, _limited_row)
            replied = time.monotonic()
            for job, rate_wait, turn in rows:
                self._turns[queue] = turn
                if job is not None:
                    jobs.append(job)
                if rate_wait is not None:
                    # The wait counts from the claim's start on the server,
                    # which came before the reply: counted from the reply,
                    # the next claim comes a little late, never too early
                    # (which would find no token yet, and cost a claim).
                    due = replied + rate_wait
                    if self.token_due is None or due < self.token_due:
                        self.token_due = due
        return jobs

    async def _set_awaiting(self, awaiting: bool) -> None:
        await fetch(self.pool, "set_awaiting", {"worker_id": self.worker_id, "awaiting": awaiting})
        self.awaiting = awaiting

    async def run_once(self) -> float | None:
        """Claim up to the free slots' worth of jobs and dispatch them.

        Returns:
            0 when the next claim should follow at once; None to wait for a
            notification, the poll interval, or (every slot busy) a free slot;
            the seconds until a rate limit's next token, when a rate held
            the pass back and that comes sooner than the poll interval.
        """
        for_token, self._for_token = self._for_token, False
        free = self.slots.free
        if free <= 0:
            return None
        self.wake.clear()
        jobs = await self.claim_within_limits(free)
        for job in jobs:
            self.dispatch(job)
        if len(jobs) == free:
            # Every slot is taken: a wake-up would be wasted, so stop asking
            # enqueuers for one.
            if self.awaiting:
                await self._set_awaiting(False)
            return 0
        if self.listen and not self.awaiting:
            await self._set_awaiting(True)
            return 0
        if self.token_due is not None:
            # No notification says when a token comes: come back for it.
            left = self.token_due - time.monotonic()
            if for_token and not jobs and self._slow_tokens:
                # Came early for a token of a slow rate (TOKEN_LEAD, or a
                # slot freed): no floor, and at once when it is that near.
                pause = max(0.0, left - TOKEN_LEAD)
            else:
                # Tokens further apart than the floor are worth coming early
                # for; faster ones are taken several a claim.
                self._slow_tokens = left > MIN_TOKEN_WAIT
                pause = max(MIN_TOKEN_WAIT, left - TOKEN_LEAD)
            if self.interval is None or pause < self.interval:
                self._for_token = True
                return pause
        return None

    async def wait(self, pause: float | None) -> None:
        """Wait for a free slot when every slot is busy, else as every service does.

        With a limited queue, a job of this worker that ends also ends the
        wait: it freed room under its queue's limit, which no notification
        announces, and this worker, having a free slot now, is the one to
        claim it at once. Room freed by other workers' jobs is theirs to
        claim; the poll interval covers the rest (a rescued worker's jobs).
        A wait for a rate limit's token ends on the same events.
        """
        if pause is None and self.slots.free <= 0:
            self.slots.freed.clear()
            await self.slots.freed.wait()  # stop sets it too
            return
        if self.limited and not self.stopping and (pause is None or self._for_token):
            await self._until_freed_or_woken(self.pause_for(pause))
            return
        await super().wait(pause)

    async def _until_freed_or_woken(self, seconds: float | None) -> None:
        freed = asyncio.ensure_future(self.slots.freed.wait())
        woken = asyncio.ensure_future(self.wake.wait())
        try:
            await asyncio.wait((freed, woken), timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
        finally:
            freed.cancel()
            woken.cancel()

    def stop(self) -> None:
        """Claim no more: return from any wait at once."""
        super().stop()
        self.slots.freed.set()

    async def close(self) -> None:
        """Close the claims' and outcomes' connection, if it is this service's own."""
        if self._owns_hot:
            await self.hot.close()
