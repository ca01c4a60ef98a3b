"""A test App for job control: handlers to cancel while they run, and one that checkpoints."""

from __future__ import annotations

import asyncio
import time

import pgjobs
from tests.apps.basic import _record

app = pgjobs.App()


@app.task(name="cancellable")
def cancellable(key: str) -> None:
    """A sync handler that runs until its job is cancelled, checking between steps."""
    _record(key, "start")
    job = pgjobs.current_job()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if job.cancelled:
            _record(key, "saw cancel")
            job.raise_if_cancelled()
        time.sleep(0.01)


@app.task(name="acancellable")
async def acancellable(key: str) -> None:
    """An async handler that waits until its job is cancelled (through asyncio)."""
    await asyncio.to_thread(_record, key, "start")
    try:
        await asyncio.sleep(60)
    except asyncio.CancelledError:
        await asyncio.to_thread(_record, key, "cancelled")
        raise


@app.task(name="resumable", max_attempts=5)
def resumable(key: str, steps: int) -> int:
    """Record one row per step, checkpointing after each: a rerun resumes after the last."""
    job = pgjobs.current_job()
    start = job.checkpoint_state or 0
    _record(key, f"resume at {start}")
    for step in range(start, steps):
        _record(key, f"step {step}")
        time.sleep(0.05)
        job.checkpoint(step + 1)
        job.progress(step + 1, total=steps, message=f"step {step + 1} of {steps}")
    return steps
