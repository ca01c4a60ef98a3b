"""`python -m tests.bench.transactional`: drain of transactional no-op jobs against plain ones.

A transactional job (`@app.task(transactional=True)`) costs a transaction of
its own on a connection of its own: BEGIN, the idle limit, the fenced
success (complete_one.sql) and COMMIT, each a round trip and the commit a
WAL flush, where a plain job's success is a share of one batched statement.
This prints both drain rates and their ratio.

Both kinds are `async def` no-ops on the same in-process worker settings;
the rounds alternate (plain, transactional, plain, ...) so load elsewhere
on the machine hits both alike. Each drain is timed from its first
handler's start to its last handler's end (worker start-up and shut-down
left out). It makes, and drops, a scratch database `htx_bench` on the
server given (default: PGJOBS_TEST_DSN, else postgres on 127.0.0.1:5432).

    python -m tests.bench.transactional --jobs 2000 --rounds 2 --concurrency 10

Runs in about 10 s at those numbers.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import psycopg
from psycopg.conninfo import make_conninfo

import pgjobs
from pgjobs import _migrate
from pgjobs.testing import drain

DATABASE = "htx_bench"

app = pgjobs.App()
_times: list[float] = []


@app.task(name="bench.plain", keep_result=False)
async def plain() -> None:
    """A no-op whose success goes to the completer's batches."""
    _times.append(time.perf_counter())


@app.task(name="bench.transactional", transactional=True, keep_result=False)
async def transactional() -> None:
    """A no-op whose success is committed in its own transaction."""
    _times.append(time.perf_counter())


def _rate(task: pgjobs.Task[[], None], jobs: int, concurrency: int) -> float:
    app.enqueue_many([task.job() for _ in range(jobs)])
    _times.clear()
    drain(app, concurrency=concurrency, timeout=120)
    assert len(_times) == jobs, f"{len(_times)} of {jobs} jobs ran"
    return (jobs - 1) / (max(_times) - min(_times))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--server",
        default=os.environ.get("PGJOBS_TEST_DSN", "postgresql://postgres@127.0.0.1:5432/postgres"),
    )
    parser.add_argument("--jobs", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--concurrency", type=int, default=10)
    options = parser.parse_args()
    with psycopg.connect(options.server, autocommit=True) as admin:
        admin.execute(f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)")
        admin.execute(f"CREATE DATABASE {DATABASE}")
    try:
        dsn = make_conninfo(options.server, dbname=DATABASE)
        _migrate.upgrade(dsn)
        app.dsn = dsn
        rates: dict[str, list[float]] = {"plain": [], "transactional": []}
        for _ in range(options.rounds):
            for name, task in (("plain", plain), ("transactional", transactional)):
                rate = _rate(task, options.jobs, options.concurrency)
                rates[name].append(rate)
                print(f"{name:>13}: {rate:8.0f} jobs/s", flush=True)
        app.close()
        medians = {name: statistics.median(values) for name, values in rates.items()}
        print(
            f"median plain {medians['plain']:.0f} jobs/s, transactional "
            f"{medians['transactional']:.0f} jobs/s: transactional/plain = "
            f"{medians['transactional'] / medians['plain']:.2f} "
            f"({options.jobs} jobs x {options.rounds} rounds, concurrency {options.concurrency})"
        )
    finally:
        app.close()
        with psycopg.connect(options.server, autocommit=True) as admin:
            admin.execute(f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)")


if __name__ == "__main__":
    main()
