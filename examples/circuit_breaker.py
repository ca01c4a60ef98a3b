"""Circuit breaker: a task that keeps failing stops being run, then one trial decides.

`@app.task(circuit_breaker=pgjobs.CircuitBreaker(failures=3, cooldown=1))`:
after three failed calls in a row, no worker runs the task's jobs for a
second; then one trial call runs, and its success lets the rest through.
The partner here is down for the first calls, then back. The breaker's
state is a row of `pgjobs.task_breakers`, which this script reads.

    PGJOBS_DSN=postgresql://postgres@localhost/postgres python examples/circuit_breaker.py
"""

from __future__ import annotations

import asyncio
import threading
import time

import pgjobs
from pgjobs.errors import JobFailedError

app = pgjobs.App()
partner = {"up": False}
calls: list[bool] = []


@app.task(
    name="example.partner_call",
    queue="example-partner",
    max_attempts=1,
    circuit_breaker=pgjobs.CircuitBreaker(failures=3, cooldown=1),
)
async def partner_call(order_id: int) -> None:
    calls.append(partner["up"])
    await asyncio.sleep(0.05)  # the call takes a while, failing or not
    if not partner["up"]:
        raise ConnectionError("the partner API is down")


def breaker_state() -> str | None:
    with app.connection() as conn:
        row = conn.execute(
            "SELECT state FROM pgjobs.task_breakers WHERE task = 'example.partner_call'"
        ).fetchone()
    return None if row is None else str(row[0])


def main() -> None:
    stop = threading.Event()
    worker = pgjobs.Worker(
        app, pgjobs.WorkerConfig(queues=("example-partner",), concurrency=1, rescue_interval=0.2)
    )
    thread = threading.Thread(target=lambda: asyncio.run(_run_until(worker, stop)))
    thread.start()
    try:
        ids = app.enqueue_many([partner_call.job(order) for order in range(8)])
        deadline = time.monotonic() + 60
        while breaker_state() != "open" and time.monotonic() < deadline:
            time.sleep(0.05)
        failed = sum(1 for up in calls if not up)
        print(f"breaker: {breaker_state()} after {failed} failed calls")
        partner["up"] = True  # the partner is back: the trial will succeed
        outcomes = []
        for job_id in ids:
            try:
                app.result(job_id, timeout=60)
                outcomes.append("succeeded")
            except JobFailedError:
                outcomes.append("failed")
        print(f"breaker: {breaker_state()}, {outcomes.count('succeeded')} calls succeeded")
    finally:
        stop.set()
        thread.join()
        app.close()


async def _run_until(worker: pgjobs.Worker, stop: threading.Event) -> None:
    run = asyncio.create_task(worker.run())
    await asyncio.to_thread(stop.wait)
    worker.request_stop()
    await run


if __name__ == "__main__":
    main()
