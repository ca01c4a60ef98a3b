"""Enqueue inside your own psycopg transaction: a rollback leaves no job, a commit makes one.

Run it (after `python -m pgjobs migrate` on that database):

    PGJOBS_DSN=postgresql://postgres@localhost/postgres python examples/psycopg_transaction.py
"""

from __future__ import annotations

import logging

import psycopg
import structlog

import pgjobs
from pgjobs.testing import drain

app = pgjobs.App()
QUEUE = "example-psycopg"


@app.task(name="example_psycopg.send_welcome", queue=QUEUE)
def send_welcome(user_id: int) -> str:
    """Send the welcome email of a user who signed up (here: pretend to)."""
    return f"welcome sent to user {user_id}"


class SignupRejectedError(Exception):
    """Raised inside the transaction to show that the job goes away with the user row."""


def sign_up(conn: psycopg.Connection[tuple[object, ...]], email: str, *, reject: bool) -> int:
    """Insert a user and queue their welcome email, in one transaction; returns the user id.

    The job is written by the same connection, in the same transaction, as the
    user row: at commit both exist (and an idle worker is woken); at rollback
    neither ever existed, so no worker can send an email to a user who is not there.
    """
    user_id = -1
    try:
        with conn.transaction():
            row = conn.execute(
                "INSERT INTO example_users (email) VALUES (%s) RETURNING id", (email,)
            ).fetchone()
            if row is None:  # RETURNING gives one row per inserted row
                raise RuntimeError("INSERT ... RETURNING id returned no row")
            user_id = int(row[0])
            send_welcome.options(conn=conn).enqueue(user_id)
            if reject:
                raise SignupRejectedError(email)  # leaving the block with an error rolls back
    except SignupRejectedError:
        pass
    return user_id


def jobs_for(user_id: int) -> int:
    """How many welcome jobs exist for `user_id`, seen from another connection, as a worker sees."""
    with psycopg.connect(app.dsn) as other:
        row = other.execute(
            "SELECT count(*) FROM pgjobs.jobs WHERE task = %s AND args @> %s::jsonb",
            (send_welcome.name, f'{{"user_id": {user_id}}}'),
        ).fetchone()
    return int(row[0]) if row else 0


def main() -> None:
    """Sign up one user that is rolled back and one that is committed, then run the job."""
    with psycopg.connect(app.dsn, autocommit=True) as conn:
        conn.execute(
            "CREATE TABLE IF NOT EXISTS example_users"
            " (id bigserial PRIMARY KEY, email text NOT NULL)"
        )
        rejected = sign_up(conn, "mallory@example.com", reject=True)
        print(f"after rollback: {jobs_for(rejected)} jobs for user {rejected}")
        accepted = sign_up(conn, "alice@example.com", reject=False)
        print(f"after commit: {jobs_for(accepted)} job for user {accepted}")

    drain(app, queues=(QUEUE,))
    with psycopg.connect(app.dsn) as conn:
        row = conn.execute(
            "SELECT status, result FROM pgjobs.jobs WHERE task = %s AND args @> %s::jsonb",
            (send_welcome.name, f'{{"user_id": {accepted}}}'),
        ).fetchone()
    print(f"the worker ran it: {row}")
    app.close()


if __name__ == "__main__":
    # pgjobs logs through structlog, which prints everything (even debug) until
    # configured: keep the worker's info lines, drop its per-job debug lines.
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.INFO))
    main()
