"""Exactly-once effects: a transactional task's writes commit with the job's success.

`charge` inserts its row through `pgjobs.current_job().conn`, in the
transaction that also marks the job succeeded: both commit, or neither does.
A declined card raises after its insert, and the insert rolls back with the
attempt; a worker killed mid-handler would leave nothing behind either, and
the job's next run writes the row once.

    PGJOBS_DSN=postgresql://postgres@localhost/postgres python examples/transactional.py
"""

from __future__ import annotations

import logging

import psycopg
import structlog

import pgjobs
from pgjobs.testing import drain

app = pgjobs.App()
QUEUE = "example-transactional"


@app.task(
    name="example.charge",
    queue=QUEUE,
    transactional=True,
    max_attempts=1,
    idle_in_transaction_timeout=10,
)
async def charge(order_id: int, amount: int) -> dict[str, int]:
    """Record the charge in the job's own transaction; raise to roll it back."""
    job = pgjobs.current_job()
    await job.conn.execute(
        "INSERT INTO example_charges (job_id, order_id, amount) VALUES (%s, %s, %s)",
        (job.id, order_id, amount),
    )
    if amount > 1000:
        raise ValueError(f"card declined for order {order_id}")
    return {"order_id": order_id}


def main() -> None:
    """Charge two orders, run them, and count each job's rows."""
    with psycopg.connect(app.dsn, autocommit=True) as conn:
        conn.execute(
            "CREATE TABLE IF NOT EXISTS example_charges (job_id bigint PRIMARY KEY,"
            " order_id integer NOT NULL, amount integer NOT NULL)"
        )
        ok = charge.enqueue(7, 250)
        declined = charge.enqueue(13, 5000)
        drain(app, queues=(QUEUE,))
        for order, job_id in ((7, ok), (13, declined)):
            status, error = conn.execute(
                "SELECT status, errors->-1->>'message' FROM pgjobs.jobs WHERE id = %s", (job_id,)
            ).fetchone()  # type: ignore[misc]
            (rows,) = conn.execute(
                "SELECT count(*) FROM example_charges WHERE job_id = %s", (job_id,)
            ).fetchone()  # type: ignore[misc]
            print(
                f"order {order}: {status}, {rows} charge row(s)" + (f" ({error})" if error else "")
            )
    app.close()


if __name__ == "__main__":
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    main()
