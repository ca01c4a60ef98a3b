"""Heartbeat: keeps this worker's row fresh, and gives back jobs it was never handed."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Collection
from typing import Any

from psycopg_pool import AsyncConnectionPool

from pgjobs._log import get_logger
from pgjobs.worker._db import CONNECTION_ERRORS, Outage, fetch, sleep_or_stop


async def run_heartbeat(
    pool: AsyncConnectionPool[Any],
    worker_id: int,
    interval: float,
    stop: asyncio.Event,
    outage: Outage,
    reregister: Callable[[], Awaitable[None]],
    known: Callable[[], Collection[int]] | None = None,
    orphan_age: float = 30.0,
) -> None:
    """Refresh `workers.last_seen_at` every `interval` seconds until `stop`.

    If the row is gone, the rescuer has declared this worker dead (it was
    paused or cut off for longer than the stale threshold) and returned its
    jobs to the queue; the worker registers again under the same id, and the
    completer's fence drops any late results for the rescued jobs.

    With `known` (the ids of every job this worker runs or holds an outcome
    for), each beat also gives back the jobs the database says this worker
    runs but it has never seen, once claimed `orphan_age` seconds ago
    (pgjobs/sql/release_orphans.sql): a claim whose reply was lost with its
    connection. The rescuer cannot see them, since this worker is alive.
    """
    log = get_logger(worker_id=worker_id)
    while not await sleep_or_stop(stop, interval):
        try:
            rows = await fetch(pool, "heartbeat", {"worker_id": worker_id})
            if not rows and not stop.is_set():
                log.warning("worker.reregistered")
                await reregister()
            if known is not None:
                await _release_orphans(pool, worker_id, list(known()), orphan_age, log)
        except CONNECTION_ERRORS as exc:
            outage.failed("heartbeat", exc)
        else:
            outage.ok()


async def _release_orphans(
    pool: AsyncConnectionPool[Any], worker_id: int, known: list[int], min_age: float, log: Any
) -> None:
    # `known` is read before the query is sent, in the loop that dispatches
    # claimed jobs: a job is in it from the moment its claim's reply arrives
    # until its outcome is committed. A claim younger than min_age may still
    # be on its way and is never touched.
    rows = await fetch(
        pool,
        "release_orphans",
        {"worker_id": worker_id, "known": known, "min_age": min_age},
    )
    released = list(rows[0]["ids"]) if rows else []
    if released:
        log.warning(
            "worker.orphans_released",
            job_ids=released[:50],
            count=len(released),
            reason="claimed by this worker, but the claim's reply never arrived",
        )
