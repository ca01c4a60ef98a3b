"""A test App with a circuit breaker: `flaky` fails while breaker_switch says so; `steady` never.

Each run records, in breaker_runs, its job, task, start (database clock)
and the state of flaky's breaker as it started.
"""

from __future__ import annotations

import os
import time

import psycopg

import pgjobs

app = pgjobs.App()

TABLES = """
CREATE TABLE IF NOT EXISTS breaker_runs (
    id bigserial PRIMARY KEY,
    job_id bigint NOT NULL,
    task text NOT NULL,
    started_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    breaker_state text,
    trial_job_id bigint
);
CREATE TABLE IF NOT EXISTS breaker_switch (failing boolean NOT NULL)
"""


def _record(task: str) -> bool:
    """Record this run; returns whether flaky should fail now."""
    job_id = pgjobs.current_job().id
    with psycopg.connect(os.environ["PGJOBS_DSN"], autocommit=True) as conn:
        conn.execute(
            "INSERT INTO breaker_runs (job_id, task, breaker_state, trial_job_id)"
            " SELECT %s, %s, b.state, b.trial_job_id"
            " FROM (SELECT 1) AS one"
            " LEFT JOIN pgjobs.task_breakers AS b ON b.task = 'flaky'",
            (job_id, task),
        )
        row = conn.execute("SELECT bool_or(failing) FROM breaker_switch").fetchone()
    return bool(row and row[0])


@app.task(
    name="flaky",
    queue="work",
    max_attempts=1,
    circuit_breaker=pgjobs.CircuitBreaker(failures=3, cooldown=3),
)
def flaky() -> None:
    """Fail while the switch is on, after a while (as a call that times out does).

    The while matters: outcomes are written in batches, so jobs claimed
    before the failure that opens the breaker is written still run; a
    handler that failed at once could use up every job first.
    """
    if _record("flaky"):
        time.sleep(0.2)
        raise RuntimeError("the partner API is down")


@app.task(name="steady", queue="work")
def steady() -> None:
    """Always succeed."""
    _record("steady")
