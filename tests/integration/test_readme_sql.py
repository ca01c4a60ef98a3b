"""The README's plain SQL, run for real against live and finished jobs alike.

The statements are read from README.md between its plain-sql markers, so the
README and this test cannot drift apart. Job 123 is failed (in the history),
124 queued (in the live table), as the README's examples assume.
"""

from __future__ import annotations

from typing import Any

import psycopg

from tests.readme import snippet, sql_statements

Conn = psycopg.Connection[tuple[Any, ...]]


def readme_statements() -> list[str]:
    return [s.strip() for s in sql_statements(snippet("plain-sql", "sql"))]


def jobs(conn: Conn) -> None:
    """Finished jobs in the history, a backlog in the live table, and jobs 123 and 124."""
    conn.execute(
        "INSERT INTO pgjobs.jobs (task, queue, status, attempts, finished_at, result)"
        " SELECT 'report', 'emails', 'succeeded', 1, now() - interval '2 hours', '{\"ok\": 1}'"
        " FROM generate_series(1, 5)"
    )
    conn.execute(
        "INSERT INTO pgjobs.jobs (task, queue) SELECT 'send', 'emails' FROM generate_series(1, 3)"
    )
    errors = (
        '[{"attempt": 3, "type": "ValueError", "message": "boom", "traceback": "Traceback: boom"}]'
    )
    conn.execute(
        "INSERT INTO pgjobs.jobs (id, task, queue, status, attempts, finished_at, errors)"
        " VALUES (123, 'send', 'emails', 'failed', 3, now(), %s)",
        [errors],
    )
    conn.execute("INSERT INTO pgjobs.jobs (id, task, queue) VALUES (124, 'send', 'emails')")
    conn.execute("INSERT INTO pgjobs.queues (name) VALUES ('emails')")


def test_the_readme_sql_sees_live_and_finished_jobs_as_one(conn: Conn) -> None:
    jobs(conn)
    assert conn.execute("SELECT status FROM pgjobs.job_history WHERE id = 123").fetchone() == (
        "failed",
    )
    results = []
    for statement in readme_statements():
        cur = conn.execute(statement)
        results.append(cur.fetchall() if cur.description else [])
    by_status, stats, failed, traceback, _retried, _cancelled, _paused = results
    assert dict(by_status) == {"succeeded": 5, "queued": 4, "failed": 1}
    (emails,) = [row for row in stats if row[0] == "emails"]
    assert emails[1:7] == (4, 0, 0, 5, 1, 0)  # available, scheduled, running, succeeded, ...
    assert [(row[0], row[2], row[3]) for row in failed] == [(123, "ValueError", "boom")]
    assert traceback == [("Traceback: boom",)]
    # The retry moved 123 back to the live table, the cancel moved 124 out.
    assert conn.execute("SELECT status FROM pgjobs.jobs_live WHERE id = 123").fetchone() == (
        "queued",
    )
    assert conn.execute("SELECT status FROM pgjobs.job_history WHERE id = 124").fetchone() == (
        "cancelled",
    )
    assert conn.execute("SELECT paused FROM pgjobs.queues WHERE name = 'emails'").fetchone() == (
        True,
    )
    # The queries of the README's table, on both tables.
    assert conn.execute(
        "SELECT count(*) FROM pgjobs.jobs WHERE status IN ('queued', 'running')"
    ).fetchone() == (4,)
    assert conn.execute(
        "SELECT count(*) FROM pgjobs.jobs WHERE status = 'failed'"
        " AND finished_at > now() - interval '1 hour'"
    ).fetchone() == (0,)
    assert conn.execute(
        "SELECT count(*) FROM pgjobs.jobs WHERE status = 'succeeded'"
        " AND finished_at > now() - interval '3 hours'"
    ).fetchone() == (5,)
    assert conn.execute("SELECT task FROM pgjobs.jobs WHERE id = 124").fetchone() == ("send",)
