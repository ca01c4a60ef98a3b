"""A test App whose handlers record every run in a side table, in their own transaction."""

from __future__ import annotations

import asyncio
import os
import time

import psycopg

import pgjobs

app = pgjobs.App()


def _record(job_key: str, note: str = "") -> None:
    with psycopg.connect(os.environ["PGJOBS_DSN"], autocommit=True) as conn:
        conn.execute(
            "INSERT INTO test_runs (job_key, pid, note) VALUES (%s, %s, %s)",
            (job_key, os.getpid(), note),
        )


@app.task(name="record")
def record(key: str) -> None:
    """Write one row per run: the side effect tests count."""
    _record(key)


@app.task(name="arecord")
async def arecord(key: str) -> None:
    """The async twin of record."""
    await asyncio.to_thread(_record, key)


@app.task(name="sleepy", max_attempts=5)
def sleepy(key: str, seconds: float) -> None:
    """Record the start, sleep, then record the end."""
    _record(key, "start")
    time.sleep(seconds)
    _record(key, "end")


@app.task(name="asleepy", max_attempts=5)
async def asleepy(key: str, seconds: float) -> None:
    """Async sleeper: cancellable by the worker."""
    await asyncio.to_thread(_record, key, "start")
    await asyncio.sleep(seconds)
    await asyncio.to_thread(_record, key, "end")


@app.task(name="noop")
async def noop(i: int = 0) -> None:
    """Does nothing."""


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
