"""Quickstart: define tasks, enqueue them, run them with a worker, read the results with SQL.

Run it against any PostgreSQL (the pgjobs schema must exist: `python -m pgjobs migrate`):

    PGJOBS_DSN=postgresql://postgres@localhost/postgres python examples/quickstart.py
"""

from __future__ import annotations

import asyncio
import logging

import psycopg
import structlog

import pgjobs
from pgjobs.testing import drain

# The App reads its database address from PGJOBS_DSN (or DATABASE_URL) when it
# first needs it; App(dsn="postgresql://...") works too.
app = pgjobs.App()

# Task names are explicit because this file runs as __main__: a worker started
# with `python -m pgjobs worker examples.quickstart:app` would import it under
# another module name, and the stored name must match in both places. The
# example's own queue keeps it away from jobs other code put in "default".
QUEUE = "example-quickstart"


@app.task(name="quickstart.add", queue=QUEUE)
def add(x: int, y: int) -> int:
    """A sync task: the worker runs it in a thread."""
    return x + y


@app.task(name="quickstart.greet", queue=QUEUE, priority=pgjobs.Priority.HIGH, timeout=5)
async def greet(name: str, punctuation: str = "!") -> str:
    """An async task: the worker runs it on its event loop, within a 5 s timeout."""
    await asyncio.sleep(0.01)
    return f"Hello, {name}{punctuation}"


def main() -> None:
    """Enqueue a few jobs, run them, and print what they returned."""
    # `enqueue` has the task's own signature: add.enqueue("2", 3) fails mypy.
    ids = [add.enqueue(2, 3), greet.enqueue("pgjobs"), greet.enqueue("world", punctuation="?")]
    # Many jobs in one round trip: build them with .job(), write them with enqueue_many.
    ids += app.enqueue_many([add.job(i, i) for i in range(5)])
    print(f"enqueued {len(ids)} jobs")

    # A worker in this process, until none of this queue's jobs is due. In
    # production: python -m pgjobs worker yourapp.jobs:app
    worker = drain(app, queues=(QUEUE,))
    print(f"the worker ran {worker.completed} jobs")

    # Jobs are rows: plain SQL reads their status and results.
    with psycopg.connect(app.dsn) as conn:
        rows = conn.execute(
            "SELECT id, task, args, status, result FROM pgjobs.jobs WHERE id = ANY(%s) ORDER BY id",
            (ids,),
        ).fetchall()
    for job_id, task, args, status, result in rows:
        print(f"job {job_id} {task}({args}) {status}: {result!r}")
    app.close()


if __name__ == "__main__":
    # pgjobs logs through structlog, which prints everything (even debug) until
    # configured: keep the worker's info lines, drop its per-job debug lines.
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.INFO))
    main()
