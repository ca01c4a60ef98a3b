"""The App the dashboard tests serve: a task that fails until its key is marked fixed."""

from __future__ import annotations

import os

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
