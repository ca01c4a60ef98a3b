"""Enqueue through every supported path: a rollback leaves no job, a commit makes exactly one."""

from __future__ import annotations

import asyncio

import psycopg
import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine
from sqlalchemy.orm import Session

import pgjobs
from pgjobs.errors import ArgumentsError, ConfigurationError, DuplicateJobError, UnknownTaskError

app = pgjobs.App()


@app.task(name="welcome", queue="emails", max_attempts=5)
def welcome(user_id: int) -> None:
    """A task to enqueue."""


def jobs(conn):
    return conn.execute(
        "SELECT task, args, queue, priority, max_attempts FROM pgjobs.jobs"
    ).fetchall()


@pytest.fixture(autouse=True)
def _app_dsn(dsn):
    app.dsn = dsn
    yield
    app.close()


def test_psycopg_rollback_leaves_nothing_commit_makes_one(dsn, conn):
    with psycopg.connect(dsn) as caller:
        welcome.options(conn=caller).enqueue(1)
        caller.rollback()
        assert jobs(conn) == []
        job_id = welcome.options(conn=caller).enqueue(2)
        assert jobs(conn) == []  # not visible before commit
        caller.commit()
    assert jobs(conn) == [("welcome", {"user_id": 2}, "emails", 2, 5)]
    assert isinstance(job_id, int)


def test_psycopg_async_connection(dsn, conn):
    async def main():
        async with await psycopg.AsyncConnection.connect(dsn) as caller:
            await welcome.options(conn=caller).enqueue_async(1)
            await caller.rollback()
            await welcome.options(conn=caller, priority=0).enqueue_async(3)
            await caller.commit()

    asyncio.run(main())
    assert jobs(conn) == [("welcome", {"user_id": 3}, "emails", 0, 5)]


def test_sqlalchemy_session_and_connection(dsn, conn):
    engine = sa.create_engine("postgresql+psycopg://", creator=lambda: psycopg.connect(dsn))
    try:
        with Session(engine) as session:
            welcome.options(conn=session).enqueue(1)
            session.rollback()
            welcome.options(conn=session).enqueue(4)
            session.commit()
        with engine.begin() as connection:
            welcome.options(conn=connection).enqueue(5)
    finally:
        engine.dispose()
    assert sorted(row[1]["user_id"] for row in jobs(conn)) == [4, 5]


def test_sqlalchemy_async_session(dsn, conn):
    async def main():
        engine = create_async_engine(
            "postgresql+psycopg://", async_creator=lambda: psycopg.AsyncConnection.connect(dsn)
        )
        try:
            async with AsyncSession(engine) as session:
                await welcome.options(conn=session).enqueue_async(1)
                await session.rollback()
                await welcome.options(conn=session).enqueue_async(6)
                await session.commit()
        finally:
            await engine.dispose()

    asyncio.run(main())
    assert [row[1] for row in jobs(conn)] == [{"user_id": 6}]


def test_sync_enqueue_on_async_connection_says_which_to_use(dsn):
    async def main():
        async with await psycopg.AsyncConnection.connect(dsn) as caller:
            with pytest.raises(ConfigurationError, match="use enqueue_async"):
                welcome.options(conn=caller).enqueue(1)

    asyncio.run(main())


def test_app_pool_and_bulk(conn):
    assert welcome.enqueue(1) is not None
    ids = app.enqueue_many([welcome.job(i) for i in range(1000)])
    assert len(ids) == 1000
    assert ids == sorted(ids)
    assert conn.execute("SELECT count(*) FROM pgjobs.jobs").fetchone()[0] == 1001


def test_bulk_in_a_transaction_rolls_back(dsn, conn):
    with psycopg.connect(dsn) as caller:
        app.enqueue_many([welcome.job(i) for i in range(10)], conn=caller)
        caller.rollback()
    assert jobs(conn) == []


def test_fingerprint_modes(conn):
    first = welcome.options(fingerprint="user-1").enqueue(1)
    with pytest.raises(DuplicateJobError, match=f"id {first}"):
        welcome.options(fingerprint="user-1").enqueue(1)
    assert welcome.options(fingerprint="user-1", on_conflict="skip").enqueue(1) is None
    assert welcome.options(fingerprint="user-1", on_conflict="return").enqueue(1) == first
    # A finished job frees its fingerprint.
    conn.execute("UPDATE pgjobs.jobs SET status = 'succeeded', finished_at = now()")
    assert welcome.options(fingerprint="user-1").enqueue(1) not in (None, first)
    assert conn.execute("SELECT count(*) FROM pgjobs.jobs").fetchone()[0] == 2


def test_delay_and_run_at_use_the_database_clock(conn):
    welcome.options(delay=3600).enqueue(1)
    ahead = conn.execute("SELECT run_at - now() FROM pgjobs.jobs").fetchone()[0]
    assert 3590 < ahead.total_seconds() <= 3600


def test_bad_input_writes_nothing(conn):
    with pytest.raises(ArgumentsError):
        welcome.enqueue(object())  # type: ignore[arg-type]
    with pytest.raises(ArgumentsError, match="signature"):
        welcome.enqueue(1, 2)  # type: ignore[call-arg]
    with pytest.raises(ConfigurationError, match="priority"):
        welcome.options(priority=9).enqueue(1)
    with pytest.raises(ConfigurationError, match="delay"):
        welcome.options(delay=-5).enqueue(1)
    with pytest.raises(UnknownTaskError, match="registered tasks: welcome"):
        app.enqueue("no.such.task", {})
    assert jobs(conn) == []


def test_enqueue_by_name_checks_the_signature(conn):
    app.enqueue("welcome", {"user_id": 9}, priority=1)
    with pytest.raises(ArgumentsError):
        app.enqueue("welcome", {"nobody": 9})
    assert jobs(conn) == [("welcome", {"user_id": 9}, "emails", 1, 5)]


def test_plain_sql_enqueue_and_inspection(conn):
    job_id = conn.execute(
        "SELECT pgjobs.enqueue('welcome', '{\"user_id\": 42}'::jsonb, queue => 'emails')"
    ).fetchone()[0]
    assert job_id > 0
    assert conn.execute("SELECT status, count(*) FROM pgjobs.jobs GROUP BY 1").fetchall() == [
        ("queued", 1)
    ]
    with pytest.raises(psycopg.errors.CheckViolation):
        conn.execute("SELECT pgjobs.enqueue('welcome', '[1, 2]'::jsonb)")
    with pytest.raises(psycopg.errors.CheckViolation):
        conn.execute("SELECT pgjobs.enqueue('welcome', '{}'::jsonb, priority => 7)")


def test_notify_only_when_a_worker_awaits_work(dsn, conn):
    with psycopg.connect(dsn, autocommit=True) as listener:
        listener.execute("LISTEN pgjobs")
        welcome.enqueue(1)
        assert list(listener.notifies(timeout=0.3)) == []
        conn.execute(
            "INSERT INTO pgjobs.workers (host, pid, queues, concurrency, awaiting_work)"
            " VALUES ('h', 1, ARRAY['emails'], 1, true)"
        )
        app.enqueue_many([welcome.job(i) for i in range(50)])
        received = list(listener.notifies(timeout=0.5))
        assert [n.payload for n in received] == ["emails"]  # once per queue per transaction
        welcome.options(delay=60).enqueue(2)  # not due: nobody is woken
        assert list(listener.notifies(timeout=0.3)) == []
