"""The client API on App (get_job, list_jobs, retry, cancel, result), on a real PostgreSQL."""

from __future__ import annotations

import asyncio
import threading
import time

import psycopg
import pytest

import pgjobs
from pgjobs._serde import MAX_RESULT_BYTES
from pgjobs.errors import (
    ConfigurationError,
    InvalidTransitionError,
    JobCancelledError,
    JobFailedError,
    JobNotFoundError,
)
from pgjobs.testing import drain


@pytest.fixture
def app(dsn):
    application = pgjobs.App(dsn)

    @application.task(name="add", max_attempts=1)
    def add(a: int, b: int) -> int:
        return a + b

    @application.task(name="boom", max_attempts=1)
    def boom() -> None:
        raise ValueError("no such row")

    @application.task(name="huge", max_attempts=3)
    def huge() -> str:
        return "x" * MAX_RESULT_BYTES

    @application.task(name="quiet", keep_result=False)
    def quiet() -> int:
        return 1

    yield application
    application.close()


def waiters(conn) -> int:
    return conn.execute("SELECT count(*) FROM pgjobs.result_waiters").fetchone()[0]


def test_get_job_and_list_jobs_give_full_jobs_newest_first_and_page(app):
    ids = [app.enqueue("add", {"a": i, "b": 1}) for i in range(5)]
    job = app.get_job(ids[0])
    assert isinstance(job, pgjobs.Job)
    assert (job.id, job.task, job.args, job.status) == (ids[0], "add", {"a": 0, "b": 1}, "queued")
    assert job.cancel_requested_at is None
    assert job.cancelled_by is None
    first = app.list_jobs(limit=2)
    assert [j.id for j in first] == ids[:-3:-1]
    assert all(isinstance(j, pgjobs.Job) for j in first)
    second = app.list_jobs(limit=2, after=first[-1].id)
    assert [j.id for j in second] == [ids[2], ids[1]]
    assert app.list_jobs(task="boom") == []
    assert len(app.list_jobs(status="queued", queue="default")) == 5
    with pytest.raises(ConfigurationError, match="unknown status"):
        app.list_jobs(status="done")
    with pytest.raises(JobNotFoundError, match="no job with id 999"):
        app.get_job(999)


def test_result_of_a_finished_job_is_answered_at_once(app, conn):
    job_id = app.enqueue("add", {"a": 2, "b": 3})
    drain(app)
    assert app.result(job_id) == 5
    assert app.result(job_id, timeout=0) == 5
    assert waiters(conn) == 0


def test_result_waits_for_the_notification_not_the_poll(app, conn):
    job_id = app.enqueue("add", {"a": 20, "b": 22})
    ran = threading.Thread(target=lambda: (time.sleep(0.3), drain(app)))
    ran.start()
    try:
        # Polling once an hour: only the completion's notification can end this wait.
        assert app.result(job_id, timeout=60, poll=3600) == 42
    finally:
        ran.join()
    assert waiters(conn) == 0


def test_result_async_waits_for_the_notification_too(app, conn):
    job_id = app.enqueue("add", {"a": 1, "b": 1})

    async def main() -> int:
        waiting = asyncio.create_task(app.result_async(job_id, timeout=60, poll=3600))
        await asyncio.sleep(0.3)
        await pgjobs.testing.drain_async(app)
        return await waiting

    assert asyncio.run(main()) == 2
    assert waiters(conn) == 0


def test_result_of_a_failed_job_raises_with_its_last_error(app):
    job_id = app.enqueue("boom")
    drain(app)
    expected = f"job {job_id} failed on attempt 1: ValueError: no such row"
    with pytest.raises(JobFailedError, match=expected) as raised:
        app.result(job_id)
    assert raised.value.error["type"] == "ValueError"
    assert "Traceback" in raised.value.error["traceback"]

    async def main() -> None:
        with pytest.raises(JobFailedError):
            await app.result_async(job_id)

    asyncio.run(main())


def test_result_of_a_cancelled_job_raises_the_cancelled_error(app):
    job_id = app.enqueue("add", {"a": 1, "b": 2})
    app.cancel(job_id, by="test")
    with pytest.raises(JobCancelledError, match=f"job {job_id} was cancelled by test") as raised:
        app.result(job_id)
    assert raised.value.cancelled_by == "test"
    job = app.get_job(job_id)
    assert job.status == "cancelled"
    assert job.cancelled_by == "test"


def test_a_wait_for_a_job_cancelled_meanwhile_ends_with_the_cancelled_error(app, conn):
    job_id = app.enqueue("add", {"a": 1, "b": 2})
    timer = threading.Timer(0.3, lambda: app.cancel(job_id))
    timer.start()
    try:
        with pytest.raises(JobCancelledError, match="was cancelled by postgres"):
            app.result(job_id, timeout=60, poll=3600)
    finally:
        timer.join()
    assert waiters(conn) == 0


def test_result_times_out_and_leaves_no_waiter(app, conn):
    job_id = app.enqueue("add", {"a": 1, "b": 2})
    with pytest.raises(TimeoutError, match=f"job {job_id} did not finish within 0.2 s"):
        app.result(job_id, timeout=0.2)

    async def main() -> None:
        with pytest.raises(TimeoutError):
            await app.result_async(job_id, timeout=0.2)

    asyncio.run(main())
    assert waiters(conn) == 0
    assert app.get_job(job_id).status == "queued"


def test_result_of_an_unknown_job_is_not_found(app):
    with pytest.raises(JobNotFoundError, match="no job with id 4242"):
        app.result(4242)


def test_result_without_a_kept_result_is_none(app):
    job_id = app.enqueue("quiet")
    drain(app)
    assert app.result(job_id) is None


def test_a_result_over_the_limit_fails_the_job_without_a_retry_naming_the_limit(app):
    job_id = app.enqueue("huge")
    drain(app)
    job = app.get_job(job_id)
    assert job.status == "failed"
    assert job.attempts == 1
    assert job.result is None
    assert f"over the limit of {MAX_RESULT_BYTES} bytes" in job.errors[-1]["message"]


def test_retry_and_cancel_on_the_app_sync_and_async(app):
    job_id = app.enqueue("boom")
    drain(app)
    app.retry(job_id)
    assert app.get_job(job_id).status == "queued"
    app.cancel(job_id)
    assert app.get_job(job_id).status == "cancelled"
    with pytest.raises(InvalidTransitionError, match="only queued or running jobs can be"):
        app.cancel(job_id)

    async def main() -> None:
        await app.retry_async(job_id)
        assert (await app.get_job_async(job_id)).status == "queued"
        await app.cancel_async(job_id, by="async")
        assert (await app.get_job_async(job_id)).cancelled_by == "async"
        assert [j.id for j in await app.list_jobs_async(status="cancelled")] == [job_id]
        with pytest.raises(JobNotFoundError):
            await app.cancel_async(999)
        with pytest.raises(JobNotFoundError):
            await app.retry_async(999)

    asyncio.run(main())
    with pytest.raises(JobNotFoundError):
        app.cancel(999)
    with pytest.raises(JobNotFoundError):
        app.retry(999)


def test_completion_notifies_only_the_jobs_someone_waits_on(app, dsn):
    waited = app.enqueue("add", {"a": 1, "b": 1})
    other = app.enqueue("add", {"a": 2, "b": 2})
    with psycopg.connect(dsn, autocommit=True) as listener:
        listener.execute("INSERT INTO pgjobs.result_waiters (job_id) VALUES (%s)", (waited,))
        listener.execute("LISTEN pgjobs_done")
        drain(app)
        payloads = [n.payload for n in listener.notifies(timeout=1.0)]
        listener.execute("DELETE FROM pgjobs.result_waiters")
    assert payloads == [str(waited)]
    assert other != waited


def test_a_waiter_row_of_a_gone_session_is_cleared_by_the_next_waiter(app, conn):
    conn.execute("INSERT INTO pgjobs.result_waiters (job_id, pid) VALUES (1, 2147483647)")
    job_id = app.enqueue("add", {"a": 1, "b": 1})
    with pytest.raises(TimeoutError):
        app.result(job_id, timeout=0.1)
    assert waiters(conn) == 0
