"""@app.task(transactional=True) on real jobs: the handler's writes commit with its success."""

from __future__ import annotations

import asyncio
from typing import Any

import psycopg
import pytest
import structlog

import pgjobs
from pgjobs.testing import drain


@pytest.fixture
def app(dsn):
    application = pgjobs.App(dsn)
    yield application
    application.close()


@pytest.fixture
def effects(conn):
    """The handlers' side-effect table, empty."""
    conn.execute(
        "CREATE TABLE IF NOT EXISTS tx_effects (id bigserial PRIMARY KEY, job_id bigint NOT NULL,"
        " attempt integer NOT NULL, note text NOT NULL DEFAULT '')"
    )
    conn.execute("TRUNCATE tx_effects")
    return conn


async def insert_effect(note: str = "") -> None:
    job = pgjobs.current_job()
    await job.conn.execute(
        "INSERT INTO tx_effects (job_id, attempt, note) VALUES (%s, %s, %s)",
        (job.id, job.attempt, note),
    )


def rows(conn: psycopg.Connection[Any], sql: str, *params: object) -> list[tuple[Any, ...]]:
    return conn.execute(sql, params).fetchall()


@pytest.mark.parametrize("keep_history", [True, False])
def test_the_effect_and_the_success_commit_in_one_transaction(app, effects, keep_history):
    @app.task(name="charge", transactional=True, keep_history=keep_history)
    async def charge(order_id: int) -> dict[str, int]:
        await insert_effect(f"order {order_id}")
        return {"charged": order_id}

    job_id = charge.enqueue(42)
    worker = drain(app)
    assert worker.completed == 1
    assert rows(effects, "SELECT job_id, attempt, note FROM tx_effects") == [
        (job_id, 1, "order 42")
    ]
    assert rows(effects, "SELECT count(*) FROM pgjobs.jobs_live") == [(0,)]
    if not keep_history:
        assert rows(effects, "SELECT count(*) FROM pgjobs.jobs") == [(0,)]
        return
    assert rows(effects, "SELECT status::text, result, worker_id FROM pgjobs.jobs") == [
        ("succeeded", {"charged": 42}, worker.worker_id)
    ]
    # The same transaction wrote both rows: they carry the same xmin.
    (effect_xmin,) = effects.execute("SELECT xmin::text FROM tx_effects").fetchone()
    (job_xmin,) = effects.execute("SELECT xmin::text FROM pgjobs.job_history").fetchone()
    assert effect_xmin == job_xmin


def test_middleware_runs_inside_the_transaction(app, effects):
    @app.middleware
    async def audit(job: pgjobs.JobContext, call_next: pgjobs.CallNext) -> Any:
        await job.conn.execute(
            "INSERT INTO tx_effects (job_id, attempt, note) VALUES (%s, %s, 'audit')",
            (job.id, job.attempt),
        )
        return await call_next()

    @app.task(name="fails", transactional=True, max_attempts=1)
    async def fails() -> None:
        await insert_effect("handler")
        raise RuntimeError("card declined")

    fails.enqueue()
    drain(app)
    # The middleware's write rolled back with the handler's.
    assert rows(effects, "SELECT count(*) FROM tx_effects") == [(0,)]


def test_a_raise_rolls_the_effect_back_and_records_the_failure(app, effects):
    @app.task(name="flaky", transactional=True, max_attempts=2, retry=pgjobs.Constant(0))
    async def flaky() -> None:
        await insert_effect()
        if pgjobs.current_job().attempt == 1:
            raise RuntimeError("card declined")

    @app.task(name="broken", transactional=True, max_attempts=1)
    async def broken() -> None:
        await insert_effect()
        raise RuntimeError("always declined")

    flaky_id = flaky.enqueue()
    broken_id = broken.enqueue()
    drain(app)
    # One effect, from the attempt that succeeded; none from the failures.
    assert rows(effects, "SELECT job_id, attempt FROM tx_effects") == [(flaky_id, 2)]
    found = {
        job_id: rest
        for job_id, *rest in rows(
            effects, "SELECT id, status::text, attempts, errors->-1->>'message' FROM pgjobs.jobs"
        )
    }
    assert found[flaky_id] == ["succeeded", 2, "card declined"]
    assert found[broken_id] == ["failed", 1, "always declined"]


def test_a_job_rescued_while_its_handler_ran_is_fenced_and_its_writes_roll_back(app, effects, dsn):
    @app.task(name="charge", transactional=True, max_attempts=3)
    async def charge() -> None:
        job = pgjobs.current_job()
        await insert_effect()
        if job.attempt == 1:
            # What the rescuer writes when it takes a job from a worker it
            # believes dead: back to the queue, no worker. This worker then
            # runs it again, as attempt 2.
            async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as other:
                await other.execute(
                    "UPDATE pgjobs.jobs_live SET status = 'queued', worker_id = NULL,"
                    " run_at = now() WHERE id = %s",
                    (job.id,),
                )

    job_id = charge.enqueue()
    with structlog.testing.capture_logs() as logs:
        worker = drain(app)
    fenced = [e for e in logs if e["event"] == "job.transaction_fenced"]
    assert [(e["job_id"], e["attempt"]) for e in fenced] == [(job_id, 1)]
    assert fenced[0]["log_level"] == "warning"
    # Attempt 1's effect went with its transaction; attempt 2's is the only one.
    assert rows(effects, "SELECT job_id, attempt FROM tx_effects") == [(job_id, 2)]
    assert rows(effects, "SELECT status::text, attempts FROM pgjobs.jobs") == [("succeeded", 2)]
    stopped = [e for e in logs if e["event"] == "worker.stopped"]
    assert stopped[0]["fenced"] == 1
    assert worker.completed == 2


def test_a_transaction_left_idle_past_its_limit_fails_naming_the_setting(app, effects):
    @app.task(name="dawdles", transactional=True, idle_in_transaction_timeout=0.2, max_attempts=1)
    async def dawdles() -> None:
        await insert_effect()
        await asyncio.sleep(1.0)  # idle in transaction, past the limit
        await insert_effect("after")

    @app.task(name="sleeps", transactional=True, idle_in_transaction_timeout=0.2, max_attempts=1)
    async def sleeps() -> str:
        await asyncio.sleep(1.0)  # no statement of its own: the transaction is open anyway
        return "done"

    ids = {dawdles.enqueue(): "dawdles", sleeps.enqueue(): "sleeps"}
    drain(app)
    assert rows(effects, "SELECT count(*) FROM tx_effects") == [(0,)]
    found = rows(
        effects,
        "SELECT id, status::text, errors->-1->>'type', errors->-1->>'message' FROM pgjobs.jobs",
    )
    assert {ids[job_id] for job_id, *_ in found} == {"dawdles", "sleeps"}
    for _, status, kind, message in found:
        assert status == "failed"
        assert kind == "pgjobs.errors.TransactionIdleError"
        assert "idle_in_transaction_session_timeout (0.2s)" in message
        assert "idle_in_transaction_timeout=" in message


def test_the_task_timeout_bounds_the_transaction(app, effects):
    @app.task(name="slow", transactional=True, timeout=0.3, max_attempts=1)
    async def slow() -> None:
        await insert_effect()
        await pgjobs.current_job().conn.execute("SELECT pg_sleep(5)")

    slow.enqueue()
    drain(app)
    assert rows(effects, "SELECT count(*) FROM tx_effects") == [(0,)]
    assert rows(effects, "SELECT status::text, errors->-1->>'type' FROM pgjobs.jobs") == [
        ("failed", "pgjobs.errors.TaskTimeoutError")
    ]
    # The query the timeout interrupted is not left running on the server.
    assert rows(
        effects,
        "SELECT count(*) FROM pg_stat_activity WHERE query = 'SELECT pg_sleep(5)'"
        " AND state = 'active'",
    ) == [(0,)]


def test_the_handler_cannot_commit_the_transaction_itself(app, effects):
    @app.task(name="commits", transactional=True, max_attempts=1)
    async def commits() -> None:
        await insert_effect()
        await pgjobs.current_job().conn.commit()

    commits.enqueue()
    drain(app)
    assert rows(effects, "SELECT count(*) FROM tx_effects") == [(0,)]
    ((status, kind, message),) = rows(
        effects, "SELECT status::text, errors->-1->>'type', errors->-1->>'message' FROM pgjobs.jobs"
    )
    assert (status, kind) == ("failed", "psycopg.ProgrammingError")
    assert "commit()" in message


def test_a_savepoint_lets_the_handler_recover_from_a_failed_statement(app, effects):
    @app.task(name="dedup", transactional=True, max_attempts=1)
    async def dedup() -> str:
        conn = pgjobs.current_job().conn
        await insert_effect("kept")
        try:
            async with conn.transaction():  # a savepoint
                await conn.execute("SELECT 1 / 0")
        except psycopg.errors.DivisionByZero:
            return "recovered"
        return "unreachable"

    dedup.enqueue()
    drain(app)
    assert rows(effects, "SELECT note FROM tx_effects") == [("kept",)]
    assert rows(effects, "SELECT status::text, result FROM pgjobs.jobs") == [
        ("succeeded", "recovered")
    ]
