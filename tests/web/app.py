"""The App the dashboard tests serve: a task that fails until its key is marked fixed."""

from __future__ import annotations

import os
import time

import psycopg

import pgjobs

app = pgjobs.App()


@app.task(name="fragile", max_attempts=1)
def fragile(key: str, password: str = "") -> str:
    """Fail with a traceback until tests insert `key` into web_fixed; then succeed."""
    del password  # only here to be redacted for viewers
    with psycopg.connect(os.environ["PGJOBS_DSN"], autocommit=True) as conn:
        row = conn.execute("SELECT 1 FROM web_fixed WHERE key = %s", (key,)).fetchone()
    if row is None:
        raise RuntimeError(f"{key} is broken")
    return f"{key} ok"


@app.task(name="noop")
def noop(n: int = 0) -> int:
    """Return its argument."""
    return n


@app.task(name="stepper")
def stepper(key: str, steps: int = 3) -> int:
    """Report progress step by step; each step waits until tests insert `key-N` into web_fixed."""
    job = pgjobs.current_job()
    with psycopg.connect(os.environ["PGJOBS_DSN"], autocommit=True) as conn:
        for step in range(1, steps + 1):
            job.progress(step, total=steps, message=f"step {step} of {steps}")
            mark = (f"{key}-{step}",)
            while conn.execute("SELECT 1 FROM web_fixed WHERE key = %s", mark).fetchone() is None:
                time.sleep(0.05)
    return steps
