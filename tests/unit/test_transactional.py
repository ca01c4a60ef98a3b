"""@app.task(transactional=True): what registration accepts, and what runs without a database."""

from __future__ import annotations

import asyncio
import datetime as dt

import psycopg
import pytest

import pgjobs
from pgjobs.errors import ConfigurationError, JobContextError, TransactionIdleError
from pgjobs.worker._executor import Executor
from pgjobs.worker._outcome import ClaimedJob
from pgjobs.worker._transaction import _ended_idle


@pytest.fixture
def app() -> pgjobs.App:
    return pgjobs.App(dsn="postgresql://nowhere.invalid/none")


def claimed(task: str) -> ClaimedJob:
    return ClaimedJob(
        id=7,
        queue="default",
        task=task,
        args={},
        priority=2,
        attempts=1,
        max_attempts=3,
        meta={},
        run_at=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
    )


def test_a_sync_handler_is_refused_with_the_way_out(app):
    with pytest.raises(ConfigurationError, match="must be `async def`") as raised:

        @app.task(name="charge", transactional=True)
        def charge(order_id: int) -> None: ...

    assert "'charge' is transactional=True" in str(raised.value)
    assert "current_job().conn" in str(raised.value)
    assert "charge" not in app.tasks  # nothing registered


def test_an_async_handler_is_transactional_with_a_60_second_idle_limit_by_default(app):
    @app.task(name="charge", transactional=True)
    async def charge(order_id: int) -> None: ...

    @app.task(name="refund", transactional=True, idle_in_transaction_timeout=2.5)
    async def refund(order_id: int) -> None: ...

    @app.task(name="plain")
    async def plain() -> None: ...

    assert charge.config.transactional is True
    assert charge.config.idle_in_transaction_timeout == 60.0
    assert refund.config.idle_in_transaction_timeout == 2.5
    assert plain.config.transactional is False


@pytest.mark.parametrize("seconds", [0, -1, float("nan"), float("inf"), True, "60", 3_000_000])
def test_an_idle_limit_postgresql_cannot_take_is_refused(app, seconds):
    with pytest.raises(ConfigurationError, match="idle_in_transaction_timeout must be"):
        app.task(name="t", transactional=True, idle_in_transaction_timeout=seconds)


def test_an_idle_limit_without_a_transaction_is_refused(app):
    with pytest.raises(ConfigurationError, match="only applies to transactional=True"):
        app.task(name="t", idle_in_transaction_timeout=5)


def test_the_connection_of_a_task_that_is_not_transactional_is_a_clear_error():
    job = pgjobs.JobContext(claimed("plain"), worker_id=None)
    with pytest.raises(JobContextError, match=r"transactional=True") as raised:
        _ = job.conn
    assert "'plain'" in str(raised.value)


def test_an_executor_without_transactions_fails_the_job_without_running_it(app):
    ran: list[int] = []

    @app.task(name="charge", transactional=True)
    async def charge() -> None:
        ran.append(1)

    executor = Executor(app.tasks, threads=1)
    try:
        outcome = asyncio.run(executor.run(claimed("charge")))
    finally:
        executor.shutdown()
    assert ran == []
    assert outcome.written is False  # the completer records this failure
    assert outcome.status == "queued"  # retried, as any failure with attempts left
    assert outcome.error is not None
    assert outcome.error["type"] == "pgjobs.errors.ConfigurationError"
    assert "run it with a pgjobs Worker" in outcome.error["message"]


def test_the_idle_timeout_is_told_apart_from_other_errors_along_the_cause_chain():
    ended = psycopg.errors.IdleInTransactionSessionTimeout(
        "terminating connection due to idle-in-transaction timeout"
    )
    assert _ended_idle(ended) == "terminating connection due to idle-in-transaction timeout"
    wrapped = psycopg.OperationalError("the connection is lost")
    wrapped.__cause__ = ended
    assert _ended_idle(wrapped) is not None
    assert _ended_idle(psycopg.OperationalError("server closed the connection")) is None
    assert _ended_idle(ValueError("idle")) is None


def test_the_idle_error_names_the_setting_and_the_option():
    message = str(TransactionIdleError("charge", 1.5, "terminating connection"))
    assert "idle_in_transaction_session_timeout (1.5s)" in message
    assert "idle_in_transaction_timeout=" in message
    assert "rolled back" in message
