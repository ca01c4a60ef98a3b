"""A test App with queue limits, whose handlers record when each run starts and ends."""

from __future__ import annotations

import os
import time

import psycopg

import pgjobs

app = pgjobs.App()
app.queue("limited", concurrency=3)
app.queue("keyed", key_concurrency=1)
app.queue("rated", rate_limit="5/s")
app.queue("key-rated", key_rate_limit="5/s")

#: The table the handlers write: one row per run, its end NULL while it runs.
SPANS = """
CREATE TABLE IF NOT EXISTS flow_spans (
    id bigserial PRIMARY KEY,
    queue text NOT NULL,
    key text,
    pid integer NOT NULL,
    started_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    ended_at timestamptz
)
"""


def session_name(pid: int) -> str:
    """The application_name of the handlers' connections in worker process `pid`."""
    return f"flow_spans {pid}"


@app.task(name="span", max_attempts=10)
def span(queue: str, key: str | None, seconds: float) -> None:
    """Record the start (database clock), sleep, record the end.

    The end is committed before the job's outcome, and the start after its
    claim, so two runs that the queue's limits keep apart never overlap here.
    """
    with psycopg.connect(
        os.environ["PGJOBS_DSN"], autocommit=True, application_name=session_name(os.getpid())
    ) as conn:
        row = conn.execute(
            "INSERT INTO flow_spans (queue, key, pid) VALUES (%s, %s, %s) RETURNING id",
            (queue, key, os.getpid()),
        ).fetchone()
        assert row is not None
        time.sleep(seconds)
        conn.execute("UPDATE flow_spans SET ended_at = clock_timestamp() WHERE id = %s", row)
