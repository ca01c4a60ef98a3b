"""Webhooks in the database: each path that ends a job, or fails an attempt, enqueues its
deliveries in the same transaction, and nothing else does.

The statements are the worker's own (complete.sql, complete_one.sql,
rescue.sql, the bulk cancel) and pgjobs' SQL functions; the deliveries they
make are read from pgjobs.jobs_live. tests/acceptance/test_webhooks.py has
worker processes deliver them to an HTTP server.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import threading
from typing import Any

import psycopg
import pytest
from psycopg_pool import AsyncConnectionPool

import pgjobs
from pgjobs import _sql
from pgjobs._context import reset_current, set_current
from pgjobs.testing import drain
from pgjobs.worker._outcome import ClaimedJob, Outcome, batch_params, failed, snoozed, succeeded
from pgjobs.worker._rescuer import rescue_once
from pgjobs.worker._webhooks import delivery_task, sync_webhooks
from tests.webhook_endpoint import Endpoint

Conn = psycopg.Connection[tuple[Any, ...]]

SECRET = "0123456789abcdef-secret"
ALL = ["failed", "dead-lettered", "succeeded", "cancelled"]


def hook(conn: Conn, name: str = "all", events: list[str] = ALL, **columns: Any) -> None:
    """A webhook added by SQL."""
    names = ["name", "url", "secret", "events", *columns]
    values = [name, f"https://example.com/{name}", SECRET, events, *columns.values()]
    conn.execute(
        f"INSERT INTO pgjobs.webhooks ({', '.join(names)})"
        f" VALUES ({', '.join(['%s'] * len(values))})",
        values,
    )


def deliveries(conn: Conn) -> list[tuple[str, str, int, str, str]]:
    """(webhook, event, job id, job status, delivery queue) of every delivery job, in order."""
    return [
        (r[0]["webhook"], r[0]["payload"]["event"], r[0]["payload"]["job"]["id"],
         r[0]["payload"]["job"]["status"], r[1])
        for r in conn.execute(
            "SELECT args, queue FROM pgjobs.jobs WHERE task = 'pgjobs.webhook' ORDER BY id"
        ).fetchall()
    ]  # fmt: skip


def running(
    conn: Conn, task: str = "t", *, attempts: int = 1, max_attempts: int = 3
) -> tuple[int, ClaimedJob]:
    """A worker, and a job it runs (on `attempts` of `max_attempts`)."""
    worker = conn.execute(
        "INSERT INTO pgjobs.workers (host, pid, queues, concurrency)"
        " VALUES ('h', 1, ARRAY['default'], 10) RETURNING id"
    ).fetchone()
    assert worker is not None
    job = conn.execute(
        "INSERT INTO pgjobs.jobs (task, status, worker_id, attempts, max_attempts, started_at)"
        " VALUES (%s, 'running', %s, %s, %s, now()) RETURNING id",
        (task, worker[0], attempts, max_attempts),
    ).fetchone()
    assert job is not None
    due = dt.datetime.now(dt.UTC)
    return int(worker[0]), ClaimedJob(
        int(job[0]), "default", task, {}, 2, attempts, max_attempts, {}, due
    )


def complete(conn: Conn, worker_id: int, *outcomes: Outcome) -> None:
    conn.execute(_sql.psycopg("complete"), batch_params(worker_id, list(outcomes)))


def test_nothing_fires_without_a_webhook(conn: Conn) -> None:
    worker_id, job = running(conn)
    complete(conn, worker_id, succeeded(job, None))
    assert deliveries(conn) == []


def test_a_success_fires_in_the_completion_and_carries_the_job(conn: Conn) -> None:
    hook(conn)
    worker_id, job = running(conn)
    complete(conn, worker_id, succeeded(job, '"done"'))
    assert deliveries(conn) == [("all", "succeeded", job.id, "succeeded", "default")]
    (args, max_attempts), *_ = conn.execute(
        "SELECT args, max_attempts FROM pgjobs.jobs WHERE task = 'pgjobs.webhook'"
    ).fetchall()
    assert max_attempts == 8
    assert set(args["payload"]["job"]) == {
        "id", "task", "queue", "status", "attempts", "max_attempts", "created_at", "finished_at"
    }  # fmt: skip
    assert SECRET not in json.dumps(args)  # read when the delivery runs, never stored in a job


def test_a_failed_attempt_fires_failed_and_the_last_dead_lettered(conn: Conn) -> None:
    hook(conn)
    hook(conn, "only-failed", ["failed"])
    worker_id, job = running(conn, max_attempts=2)
    complete(conn, worker_id, failed(job, ValueError("first"), pgjobs.Constant(seconds=0)))
    assert deliveries(conn) == [
        ("all", "failed", job.id, "queued", "default"),
        ("only-failed", "failed", job.id, "queued", "default"),
    ]
    error = conn.execute(
        "SELECT args->'payload'->'job'->'error' FROM pgjobs.jobs"
        " WHERE task = 'pgjobs.webhook' ORDER BY id LIMIT 1"
    ).fetchone()
    assert error is not None
    assert error[0]["type"] == "ValueError"
    assert error[0]["message"] == "first"
    assert "traceback" not in error[0]

    conn.execute(
        "UPDATE pgjobs.jobs_live SET status = 'running', attempts = 2, worker_id = %s"
        " WHERE id = %s",
        (worker_id, job.id),
    )
    last = ClaimedJob(job.id, "default", "t", {}, 2, 2, 2, {}, job.run_at)
    complete(conn, worker_id, failed(last, ValueError("second"), pgjobs.Constant(seconds=0)))
    # One delivery per webhook for the last attempt: dead-lettered where it listens to that.
    assert deliveries(conn)[2:] == [
        ("all", "dead-lettered", job.id, "failed", "default"),
        ("only-failed", "failed", job.id, "failed", "default"),
    ]


def test_a_snooze_is_not_a_failure(conn: Conn) -> None:
    hook(conn)
    worker_id, job = running(conn)
    complete(conn, worker_id, snoozed(job, 10))
    assert deliveries(conn) == []


def test_a_job_given_back_by_a_stopping_worker_is_not_a_failure(conn: Conn) -> None:
    hook(conn)
    worker_id, job = running(conn)
    conn.execute(_sql.psycopg("release"), {"ids": [job.id], "worker_id": worker_id})
    assert conn.execute("SELECT status FROM pgjobs.jobs WHERE id = %s", (job.id,)).fetchone() == (
        "queued",
    )
    assert deliveries(conn) == []


def test_a_task_without_history_fires_no_end(conn: Conn) -> None:
    hook(conn)
    worker_id, job = running(conn)
    complete(conn, worker_id, succeeded(job, None, keep=False))
    assert deliveries(conn) == []


def test_deliveries_roll_back_with_the_outcome(dsn: str, conn: Conn) -> None:
    hook(conn)
    worker_id, job = running(conn)
    with psycopg.connect(dsn) as tx:
        complete(tx, worker_id, succeeded(job, None))
        assert len(deliveries(tx)) == 1
        tx.rollback()
    assert deliveries(conn) == []
    assert conn.execute("SELECT status FROM pgjobs.jobs WHERE id = %s", (job.id,)).fetchone() == (
        "running",
    )


def test_filters_by_task_and_queue_and_the_delivery_queue(conn: Conn) -> None:
    hook(conn, "by-task", ["succeeded"], tasks=["t"])
    hook(conn, "by-other-task", ["succeeded"], tasks=["other"])
    hook(conn, "by-queue", ["succeeded"], queues=["default"], queue="hooks")
    hook(conn, "by-other-queue", ["succeeded"], queues=["elsewhere"])
    worker_id, job = running(conn)
    complete(conn, worker_id, succeeded(job, None))
    assert deliveries(conn) == [
        ("by-task", "succeeded", job.id, "succeeded", "default"),
        ("by-queue", "succeeded", job.id, "succeeded", "hooks"),
    ]


def test_a_transactional_success_fires_in_its_transaction(conn: Conn) -> None:
    hook(conn)
    worker_id, job = running(conn)
    conn.execute(
        _sql.psycopg("complete_one"),
        {"id": job.id, "worker_id": worker_id, "attempt": 1, "result": None, "keep": True},
    )
    assert deliveries(conn) == [("all", "succeeded", job.id, "succeeded", "default")]


def test_cancels_fire_cancelled(conn: Conn) -> None:
    hook(conn)
    queued = conn.execute("SELECT pgjobs.enqueue('t')").fetchone()
    more = conn.execute("SELECT pgjobs.enqueue('u')").fetchone()
    assert queued is not None
    assert more is not None
    conn.execute("SELECT pgjobs.cancel(%s)", queued)
    conn.execute(_sql.psycopg("admin_cancel_jobs"), {"queue": None, "task": "u", "by": "ops"})
    # A running job asked to stop ends cancelled through the completion.
    worker_id, job = running(conn)
    conn.execute("SELECT pgjobs.cancel(%s)", (job.id,))
    complete(conn, worker_id, succeeded(job, None))
    assert deliveries(conn) == [
        ("all", "cancelled", queued[0], "cancelled", "default"),
        ("all", "cancelled", more[0], "cancelled", "default"),
        ("all", "cancelled", job.id, "cancelled", "default"),
    ]
    by = conn.execute(
        "SELECT args->'payload'->'job'->>'cancelled_by' FROM pgjobs.jobs"
        " WHERE task = 'pgjobs.webhook' ORDER BY id"
    ).fetchall()
    assert by[1] == ("ops",)


def test_the_rescuer_fires_failed_and_dead_lettered(dsn: str, conn: Conn) -> None:
    hook(conn)
    worker_id, first = running(conn, attempts=1, max_attempts=2)
    job = conn.execute(
        "INSERT INTO pgjobs.jobs (task, status, worker_id, attempts, max_attempts, started_at)"
        " VALUES ('t', 'running', %s, 2, 2, now()) RETURNING id",
        (worker_id,),
    ).fetchone()
    assert job is not None
    conn.execute(
        "UPDATE pgjobs.workers SET last_seen_at = now() - interval '1 hour' WHERE id = %s",
        (worker_id,),
    )

    async def rescue() -> dict[str, int]:
        async with AsyncConnectionPool(dsn, min_size=1, open=False) as pool:
            return await rescue_once(pool, stale_after=30)

    assert asyncio.run(rescue())["requeued"] == 1
    assert sorted(deliveries(conn)) == [
        ("all", "dead-lettered", job[0], "failed", "default"),
        ("all", "failed", first.id, "queued", "default"),
    ]


def test_a_delivery_fires_nothing_of_its_own(conn: Conn) -> None:
    hook(conn)
    conn.execute(
        "INSERT INTO pgjobs.jobs (task, status, attempts, finished_at)"
        " VALUES ('pgjobs.webhook', 'failed', 8, now())"
    )
    assert conn.execute("SELECT count(*) FROM pgjobs.jobs").fetchone() == (1,)


def test_a_row_written_as_finished_fires_unless_silenced(dsn: str, conn: Conn) -> None:
    hook(conn)
    conn.execute(
        "INSERT INTO pgjobs.jobs (task, status, finished_at) VALUES ('t', 'succeeded', now())"
    )
    assert [d[1] for d in deliveries(conn)] == ["succeeded"]
    with psycopg.connect(dsn) as tx:
        tx.execute("SET LOCAL pgjobs.webhooks = 'off'")
        tx.execute(
            "INSERT INTO pgjobs.jobs (task, status, finished_at) VALUES ('t', 'failed', now())"
        )
    assert [d[1] for d in deliveries(conn)] == ["succeeded"]


def test_moving_old_finished_rows_fires_nothing(conn: Conn) -> None:
    hook(conn)
    conn.execute(
        "INSERT INTO pgjobs.jobs_live (task, status, finished_at) VALUES ('t', 'succeeded', now())"
    )
    assert conn.execute("SELECT pgjobs.move_finished_to_history()").fetchone() == (1,)
    assert deliveries(conn) == []
    # The setting was the function's own: the session fires again.
    conn.execute(
        "INSERT INTO pgjobs.jobs (task, status, finished_at) VALUES ('t', 'succeeded', now())"
    )
    assert len(deliveries(conn)) == 1


def test_an_inactive_webhook_fires_nothing(conn: Conn) -> None:
    hook(conn, active=False)
    worker_id, job = running(conn)
    complete(conn, worker_id, succeeded(job, None))
    assert deliveries(conn) == []


@pytest.mark.parametrize(
    ("column", "value", "constraint"),
    [
        ("url", "ftp://example.com/x", "webhooks_url_http"),
        ("url", "example.com/x", "webhooks_url_http"),
        ("secret", "short", "webhooks_secret_long"),
        ("events", ["failed", "exploded"], "webhooks_events_known"),
        ("events", [], "webhooks_events_known"),
    ],
)
def test_sql_rows_are_checked_as_declarations_are(
    conn: Conn, column: str, value: Any, constraint: str
) -> None:
    row = {"name": "bad", "url": "https://example.com/", "secret": SECRET, "events": ["failed"]}
    row[column] = value
    with pytest.raises(psycopg.errors.CheckViolation, match=constraint):
        conn.execute(
            "INSERT INTO pgjobs.webhooks (name, url, secret, events) VALUES (%s, %s, %s, %s)",
            list(row.values()),
        )


def test_workers_write_code_webhooks_and_leave_sql_ones(dsn: str, conn: Conn) -> None:
    hook(conn, "by-sql")
    hook(conn, "b", ["succeeded"])  # the code declares this name: it takes the row over
    app = pgjobs.App(dsn)
    app.webhook("https://example.com/a", events=["succeeded"], secret=SECRET, tasks="t")
    app.webhook("https://example.com/b", events=["failed"], secret=SECRET, name="b")

    async def sync(app: pgjobs.App) -> dict[str, list[str]]:
        async with AsyncConnectionPool(dsn, min_size=1, open=False) as pool:
            return await sync_webhooks(pool, app)

    assert asyncio.run(sync(app)) == {"changed": ["https://example.com/a", "b"], "removed": []}
    assert asyncio.run(sync(app)) == {"changed": [], "removed": []}
    assert conn.execute(
        "SELECT name, events, tasks, origin, active FROM pgjobs.webhooks ORDER BY name"
    ).fetchall() == [
        ("b", ["failed"], None, "code", True),
        ("by-sql", ALL, None, "sql", True),
        ("https://example.com/a", ["succeeded"], ["t"], "code", True),
    ]
    # One removed from the code: inactive, its row kept; the SQL one untouched.
    del app.webhooks["b"]
    assert asyncio.run(sync(app)) == {"changed": [], "removed": ["b"]}
    assert conn.execute("SELECT name, active FROM pgjobs.webhooks ORDER BY name").fetchall() == [
        ("b", False),
        ("by-sql", True),
        ("https://example.com/a", True),
    ]


def run_delivery(dsn: str, delivery_id: int, webhook: str, payload: dict[str, Any]) -> Any:
    """Run the delivery task's handler as a worker would, for job `delivery_id`."""

    async def main() -> Any:
        async with AsyncConnectionPool(dsn, min_size=1, open=False) as pool:
            task = delivery_task(pgjobs.App(dsn), pool)
            due = dt.datetime.now(dt.UTC)
            job = ClaimedJob(delivery_id, "default", "pgjobs.webhook", {}, 2, 1, 8, {}, due)
            token = set_current(pgjobs.JobContext(job, worker_id=None))
            try:
                return await task.fn(webhook=webhook, payload=payload)
            finally:
                reset_current(token)

    return asyncio.run(main())


def test_a_delivery_reads_its_webhook_when_it_runs(dsn: str, conn: Conn) -> None:
    pytest.importorskip("httpx", reason="the webhooks extra is not installed")
    hook(conn, "moved", ["succeeded"])
    endpoint = Endpoint()
    thread = threading.Thread(target=endpoint.serve_forever, daemon=True)
    thread.start()
    try:
        # Changed after the delivery was made: the attempt goes to the new URL.
        conn.execute("UPDATE pgjobs.webhooks SET url = %s WHERE name = 'moved'", (endpoint.url,))
        assert run_delivery(dsn, 41, "moved", {"event": "succeeded"}) == {"status": 200}
    finally:
        endpoint.shutdown()
        endpoint.server_close()
    [(headers, body)] = endpoint.received
    assert headers["X-Pgjobs-Delivery"] == "41"
    assert body == b'{"event":"succeeded"}'


def test_a_delivery_for_a_removed_webhook_is_dropped(dsn: str, conn: Conn) -> None:
    hook(conn, "retired", ["succeeded"], active=False)
    assert "dropped" in run_delivery(dsn, 1, "retired", {"event": "succeeded"})
    assert "dropped" in run_delivery(dsn, 2, "never-was", {"event": "succeeded"})


def test_the_testing_drain_leaves_the_apps_webhooks_out(dsn: str, conn: Conn) -> None:
    app = pgjobs.App(dsn)

    @app.task(name="t")
    def t() -> None:
        """Does nothing."""

    app.webhook("https://example.invalid/never", events=["succeeded"], secret=SECRET)
    t.enqueue()
    try:
        drain(app)
    finally:
        app.close()
    assert conn.execute("SELECT task, status::text FROM pgjobs.jobs").fetchall() == [
        ("t", "succeeded")
    ]
    assert conn.execute("SELECT count(*) FROM pgjobs.webhooks").fetchone() == (0,)
