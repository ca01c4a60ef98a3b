"""A test App for workflows: steps that record each run and pass their parents' results on."""

from __future__ import annotations

import os
import time

import psycopg

import pgjobs

app = pgjobs.App()


@app.task(name="step", max_attempts=5)
def step(name: str, seconds: float = 0.0) -> list[str]:
    """Record the run (with what its parents returned), sleep, and return the path so far.

    The path is the parents' paths followed by this step's name, so the last
    step's result shows every step it came after, read through
    `current_job().parent_results()`.
    """
    parents = pgjobs.current_job().parent_results()
    path = [name for result in parents.values() for name in result] + [name]
    with psycopg.connect(os.environ["PGJOBS_DSN"], autocommit=True) as conn:
        conn.execute(
            "INSERT INTO test_runs (job_key, pid, note, at) VALUES (%s, %s, %s, clock_timestamp())",
            (name, os.getpid(), ",".join(path)),
        )
    time.sleep(seconds)
    return path
