"""Flow control: a limit per queue and per key, which holds across every worker process.

`app.queue("example-exports", concurrency=2)` lets at most two export jobs run
at once, however many workers and slots serve the queue;
`app.queue("example-reports", key_concurrency=1)` runs at most one report per
customer at a time, several customers side by side;
`app.queue("example-calls", rate_limit="10/s")` starts at most ten calls a
second, one every 0.1 s. A worker with eight slots runs here in a thread,
and the handlers count how many of them run at once, and when calls start.

    PGJOBS_DSN=postgresql://postgres@localhost/postgres python examples/flow_control.py
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import Counter

import pgjobs

app = pgjobs.App()
app.queue("example-exports", concurrency=2)
app.queue("example-reports", key_concurrency=1)
app.queue("example-calls", rate_limit="10/s")

running: Counter[str] = Counter()
most: Counter[str] = Counter()
call_starts: list[float] = []


async def _measure(*names: str) -> None:
    # The handlers all run on the worker's event loop: no lock needed.
    for name in names:
        running[name] += 1
        most[name] = max(most[name], running[name])
    await asyncio.sleep(0.05)
    for name in names:
        running[name] -= 1


@app.task(name="example.export", queue="example-exports")
async def export(report_id: int) -> None:
    await _measure("exports")


@app.task(name="example.report", queue="example-reports")
async def report(customer: int, month: int) -> None:
    await _measure("reports", f"customer:{customer}")


@app.task(name="example.call", queue="example-calls")
async def call(n: int) -> None:
    call_starts.append(time.monotonic())


def main() -> None:
    stop = threading.Event()
    worker = pgjobs.Worker(
        app,
        pgjobs.WorkerConfig(
            queues=("example-exports", "example-reports", "example-calls"), concurrency=8
        ),
    )
    thread = threading.Thread(target=lambda: asyncio.run(_run_until(worker, stop)))
    thread.start()
    try:
        ids = app.enqueue_many([export.job(i) for i in range(12)])
        ids += app.enqueue_many(
            [
                report.options(key=f"customer:{customer}").job(customer, month)
                for customer in range(3)
                for month in range(1, 5)
            ]
        )
        ids += app.enqueue_many([call.job(n) for n in range(15)])
        for job_id in ids:
            app.result(job_id, timeout=60)
        print(f"exports: at most {most['exports']} at once")
        per_customer = max(most[f"customer:{customer}"] for customer in range(3))
        print(f"reports: at most {per_customer} per customer at once, {most['reports']} in all")
        # 15 calls at 10 a second: the 15th starts 1.4 s after the first
        # (less the first one's start delay, under a tenth of a second here).
        took = max(call_starts) - min(call_starts)
        print(f"calls: 15 started over {'1.3 s or more' if took >= 1.3 else f'{took:.2f} s'}")
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
