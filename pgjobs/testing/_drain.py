"""Run the jobs your code enqueued, in-process, until none are due."""

from __future__ import annotations

import asyncio
from typing import Any

from psycopg.rows import dict_row

from pgjobs import _connect, _sql
from pgjobs._app import App
from pgjobs.testing._memory import MemoryDrain, drain_memory
from pgjobs.worker import Worker, WorkerConfig


# A timeout argument is this helper's whole contract, so ASYNC109 does not apply.
async def drain_async(
    app: App,
    *,
    timeout: float = 60.0,  # noqa: ASYNC109
    **config: Any,
) -> Worker | MemoryDrain:
    """Run a worker in this event loop until no job of its queues is due or running.

    Jobs scheduled for later (a delay, a retry backoff) are left queued.
    Keyword arguments are WorkerConfig fields; `queues` defaults to every
    queue the App's tasks use, plus "default", and `webhooks` to False (the
    App's webhooks are not written to the database, so none fires). Inside
    `in_memory(app)`, the jobs kept in memory run instead, one at a time
    (pgjobs/testing/_memory.py).

    Returns:
        The stopped Worker (its `completed` counts the jobs it ran); in
        memory, a MemoryDrain with the same `completed`.

    Raises:
        TimeoutError: jobs were still due after `timeout` seconds.
    """
    if app._memory is not None:
        return await drain_memory(app, timeout=timeout, **config)
    config.setdefault(
        "queues", tuple(sorted({t.defaults.queue for t in app.tasks.values()} | {"default"}))
    )
    config.setdefault("poll_interval", 0.05)
    # The App's webhooks stay out of the test database: a test run notifies
    # no endpoint unless the test adds a webhook itself.
    config.setdefault("webhooks", False)
    worker = Worker(app, WorkerConfig(**config))
    run = asyncio.create_task(worker.run())
    queues = list(worker.config.queues)
    try:
        async with asyncio.timeout(timeout):
            async with await _connect.connect_async(
                app.dsn, _connect.APP, autocommit=True, row_factory=dict_row
            ) as conn:
                while not run.done():
                    await asyncio.sleep(0.05)
                    cur = await conn.execute(_sql.psycopg("testing_unfinished"), {"queues": queues})
                    row = await cur.fetchone()
                    if row is not None and row["unfinished"] == 0 and worker.worker_id is not None:
                        break
    finally:
        worker.request_stop()
        await run
    return worker


def drain(app: App, *, timeout: float = 60.0, **config: Any) -> Worker | MemoryDrain:
    """Blocking twin of `drain_async`, for synchronous tests."""
    return asyncio.run(drain_async(app, timeout=timeout, **config))
