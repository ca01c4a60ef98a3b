"""Workflows: jobs that wait for other jobs, and read what those returned.

A chain fetches, parses and stores a page, each step after the one before;
a group resizes three images side by side, and its callback runs once all
three have succeeded, with their results. A group whose member fails never
runs its callback: it is cancelled; a clean-up that waits for its members
with `pgjobs.after(id, always=True)` runs whatever their outcome. A worker
runs here in a thread.

    PGJOBS_DSN=postgresql://postgres@localhost/postgres python examples/workflows.py
"""

from __future__ import annotations

import asyncio
import contextlib
import threading

import pgjobs
from pgjobs.errors import JobCancelledError

app = pgjobs.App()


@app.task(name="example.fetch", queue="example-workflows")
def fetch(url: str) -> str:
    return f"<h1>{url}</h1>"


@app.task(name="example.parse", queue="example-workflows")
def parse() -> str:
    (page,) = pgjobs.current_job().parent_results().values()
    return page.removeprefix("<h1>").removesuffix("</h1>")


@app.task(name="example.store", queue="example-workflows")
def store() -> str:
    (title,) = pgjobs.current_job().parent_results().values()
    return f"stored {title!r}"


@app.task(name="example.resize", queue="example-workflows", max_attempts=1)
def resize(image: int) -> int:
    if image < 0:
        raise ValueError(f"no image {image}")
    return image * 100


@app.task(name="example.notify", queue="example-workflows")
def notify(user: str) -> str:
    sizes = sorted(pgjobs.current_job().parent_results().values())
    return f"{user}: resized {sizes}"


@app.task(name="example.cleanup", queue="example-workflows")
def cleanup() -> str:
    job = pgjobs.current_job()
    return f"ran after {len(job.parents)} images ({len(job.parent_results())} resized)"


def main() -> None:
    stop = threading.Event()
    worker = pgjobs.Worker(app, pgjobs.WorkerConfig(queues=("example-workflows",)))
    thread = threading.Thread(target=lambda: asyncio.run(_run_until(worker, stop)))
    thread.start()
    try:
        with app.connection() as conn:  # one transaction: all three jobs, or none
            steps = pgjobs.chain(fetch.job("example.com"), parse.job(), store.job()).enqueue(
                conn=conn
            )
        print(f"chain: {app.result(steps[-1], timeout=60)}")
        group = pgjobs.group([resize.job(i) for i in (1, 2, 3)]).then(notify.job("ada"))
        print(f"group: {app.result(group.enqueue()[-1], timeout=60)}")
        broken = pgjobs.group([resize.job(i) for i in (1, -1)]).then(notify.job("bob"))
        *members, callback = broken.enqueue()
        # Runs once both members have ended, succeeded or not.
        tidy = cleanup.options(depends_on=[pgjobs.after(m, always=True) for m in members])
        tidied = tidy.enqueue()
        with contextlib.suppress(JobCancelledError):
            app.result(callback, timeout=60)
        print(
            f"group with a failure: callback {app.get_job(callback).status}, "
            f"clean-up {app.result(tidied, timeout=60)}"
        )
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
