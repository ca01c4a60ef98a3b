"""`python -m tests.bench.cancel_latency [DSN] [--runs N]`: how soon a handler sees a cancel.

One worker runs in this process (its own thread and event loop), one job at
a time. Each job's async handler waits; this script commits
`SELECT pgjobs.cancel(id)` on its own autocommit connection and takes the
time when the statement returns; the handler takes the time when
CancelledError reaches it. Both clocks are this process's monotonic clock.
The latency is the notification's way (server, the worker's listener
connection, the loop) plus the asyncio cancel. It prints p50, p99 and max
over N runs (default 100) and the time a job took to end `cancelled` in the
database. Uses a scratch database it creates and drops (bench_cancel_*).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import statistics
import threading
import time

import psycopg
from psycopg.conninfo import make_conninfo

import pgjobs
from pgjobs import _migrate

app = pgjobs.App()
seen: dict[int, float] = {}
_started: dict[int, threading.Event] = {}
_lock = threading.Lock()


def started(job_id: int) -> threading.Event:
    """The event a job's handler sets when it runs (made by whichever thread asks first)."""
    with _lock:
        return _started.setdefault(job_id, threading.Event())


@app.task(name="bench.wait", queue="bench-cancel")
async def wait() -> None:
    job_id = pgjobs.current_job().id
    started(job_id).set()
    try:
        await asyncio.sleep(3600)
    except asyncio.CancelledError:
        seen[job_id] = time.monotonic()
        raise


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("dsn", nargs="?", default=os.environ.get("PGJOBS_DSN"))
    parser.add_argument("--runs", type=int, default=100)
    args = parser.parse_args()
    name = f"bench_cancel_{secrets.token_hex(3)}"
    with psycopg.connect(args.dsn, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    dsn = make_conninfo(args.dsn, dbname=name)
    try:
        _migrate.upgrade(dsn)
        app.dsn = dsn
        run(dsn, args.runs)
    finally:
        app.close()
        with psycopg.connect(args.dsn, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def run(dsn: str, runs: int) -> None:
    worker = pgjobs.Worker(app, pgjobs.WorkerConfig(queues=("bench-cancel",), concurrency=1))
    stop = threading.Event()

    async def serve() -> None:
        running = asyncio.create_task(worker.run())
        await asyncio.to_thread(stop.wait)
        worker.request_stop()
        await running

    thread = threading.Thread(target=lambda: asyncio.run(serve()))
    thread.start()
    latencies: list[float] = []
    ended: list[float] = []
    try:
        with psycopg.connect(dsn, autocommit=True) as conn:
            for _ in range(runs):
                job_id = wait.enqueue()
                assert job_id is not None
                if not started(job_id).wait(30):
                    raise RuntimeError("the worker never started the job")
                conn.execute("SELECT pgjobs.cancel(%s)", (job_id,))
                committed = time.monotonic()
                try:
                    app.result(job_id, timeout=30)
                except pgjobs.errors.JobCancelledError:
                    ended.append(time.monotonic() - committed)
                latencies.append(seen[job_id] - committed)
    finally:
        stop.set()
        thread.join()
    ms = [x * 1000 for x in latencies]
    done = [x * 1000 for x in ended]
    print(
        f"cancel -> handler sees it, {runs} runs: p50 {statistics.median(ms):.2f} ms, "
        f"p99 {percentile(ms, 0.99):.2f} ms, max {max(ms):.2f} ms"
    )
    print(
        f"cancel -> job recorded cancelled (result() returns): "
        f"p50 {statistics.median(done):.2f} ms, p99 {percentile(done, 0.99):.2f} ms"
    )


if __name__ == "__main__":
    main()
