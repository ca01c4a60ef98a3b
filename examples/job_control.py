"""Job control from the client: wait for a result, see a failure, stop a running job.

A worker runs in this process (in a thread); the main thread talks to the
queue through the App's client API: `result` waits for a job's return value
(woken by a notification when it finishes), `cancel` stops a job while it
runs, and `get_job` / `list_jobs` read jobs back.

    PGJOBS_DSN=postgresql://postgres@localhost/postgres python examples/job_control.py
"""

from __future__ import annotations

import asyncio
import threading
import time

import pgjobs
from pgjobs.errors import JobCancelledError, JobFailedError

app = pgjobs.App()
QUEUE = "example-control"


@app.task(name="example.export", queue=QUEUE, max_attempts=1)
async def export(report_id: int) -> dict[str, str]:
    await asyncio.sleep(0.2)
    return {"url": f"/exports/{report_id}"}


@app.task(name="example.fragile", queue=QUEUE, max_attempts=1)
def fragile(row: int) -> None:
    raise ValueError(f"row {row} is malformed")


@app.task(name="example.endless", queue=QUEUE)
async def endless() -> None:
    await asyncio.sleep(3600)  # long work, which a cancel interrupts


@app.task(name="example.chunks", queue=QUEUE)
def chunks() -> int:
    """A sync handler cannot be interrupted: it checks the flag between steps."""
    job = pgjobs.current_job()
    done = 0
    while True:
        job.raise_if_cancelled()
        time.sleep(0.05)
        done += 1


def main() -> None:
    stop = threading.Event()
    worker = pgjobs.Worker(app, pgjobs.WorkerConfig(queues=(QUEUE,), concurrency=4))
    thread = threading.Thread(target=lambda: asyncio.run(_run_until(worker, stop)))
    thread.start()
    try:
        job_id = export.enqueue(7)
        print("result:", app.result(job_id, timeout=30))

        failing = fragile.enqueue(3)
        try:
            app.result(failing, timeout=30)
        except JobFailedError as exc:
            error = exc.error or {}
            print("failed:", error.get("type"), "-", error.get("message"))

        for task in (endless, chunks):
            running = task.enqueue()
            while app.get_job(running).status != "running":
                time.sleep(0.05)
            app.cancel(running, by="example")
            try:
                app.result(running, timeout=30)
            except JobCancelledError as exc:
                print(f"{task.name.rsplit('.', 1)[-1]}: cancelled by {exc.cancelled_by}")

        latest = app.list_jobs(queue=QUEUE, limit=4)  # the four jobs above, newest first
        print("statuses:", sorted({job.status.value for job in latest}))
    finally:
        stop.set()
        thread.join()
        app.close()


async def _run_until(worker: pgjobs.Worker, stop: threading.Event) -> None:
    running = asyncio.create_task(worker.run())
    await asyncio.to_thread(stop.wait)
    worker.request_stop()
    await running


if __name__ == "__main__":
    main()
