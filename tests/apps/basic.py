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
