"""pgjobs' signatures are typed: mypy rejects wrongly typed enqueues, arguments and options."""

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

# Each line marked `# error` must be a mypy error, and no other line may be.
SNIPPET = textwrap.dedent(
    """
    import datetime as dt
    from typing import Any

    import psycopg
    import sqlalchemy
    from sqlalchemy.ext.asyncio import AsyncSession
    from sqlalchemy.orm import Session, scoped_session

    import pgjobs

    app = pgjobs.App()

    @app.task(queue="emails", max_attempts=5)
    def send_welcome(user_id: int) -> None: ...

    @app.task
    async def resize(image_id: int, width: int = 800) -> dict[str, int]:
        return {}

    good: int | None = send_welcome.enqueue(42)
    send_welcome.options(delay=5, fingerprint="u42").enqueue(user_id=42)
    resize.enqueue(1, width=20)
    send_welcome.enqueue("x")  # error: wrong argument type
    resize.enqueue(1, height=3)  # error: unknown keyword
    send_welcome.options(queue="q").enqueue()  # error: missing argument

    # The enqueue options, one declaration for every signature that takes them.
    at = dt.datetime.now(dt.UTC)
    send_welcome.options(
        queue="q", priority=pgjobs.Priority.HIGH, run_at=at, max_attempts=2,
        fingerprint="f", on_conflict="return", meta={"trace": "t"},
    )
    send_welcome.options(delay=dt.timedelta(minutes=5), priority=None)
    app.enqueue("t", {"a": 1}, priority=0, delay=1.5, on_conflict="skip")
    app.job("t", queue="q", run_at=at)
    send_welcome.options(delay="x")  # error: delay is seconds or a timedelta
    send_welcome.options(on_conflict="ignore")  # error: not one of the literals
    app.enqueue("t", {}, priority="high")  # error: priority is an int
    app.enqueue("t", {}, prioirty=1)  # error: not an option
    app.job("t", run_at="2030-01-01")  # error: run_at is a datetime
    app.job("t", meta=["m"])  # error: meta is a dict
    send_welcome.options(depends_on=[1, pgjobs.after(2, always=True)]).enqueue(42)
    send_welcome.options(depends_on=["1"])  # error: depends_on holds ids or Dependency
    pgjobs.after(3, always="yes")  # error: always is a bool

    # The job context and middleware.
    @app.middleware
    async def timing(job: pgjobs.JobContext, call_next: pgjobs.CallNext) -> Any:
        return await call_next()

    def not_async(job: pgjobs.JobContext, call_next: pgjobs.CallNext) -> None: ...

    @app.task(name="reports.*")
    def any_report(day: str) -> str:
        job = pgjobs.current_job()
        return job.task + str(job.id + job.attempt) + job.queue + str(job.meta.get("k"))

    any_report.enqueue(3)  # error: wrong argument type
    app.middleware(not_async)  # error: a middleware is async
    pgjobs.current_job().attempt.upper()  # error: attempt is an int

    # conn=: the connection kinds, sync for enqueue and async for enqueue_async.
    def sync(
        pg: psycopg.Connection[Any],
        session: Session,
        connection: sqlalchemy.Connection,
        scoped: scoped_session[Session],
    ) -> None:
        app.enqueue("t", conn=pg)
        app.enqueue("t", conn=session, queue="q")
        app.enqueue("t", conn=connection)
        app.enqueue("t", conn=scoped)
        app.enqueue_many([send_welcome.job(1)], conn=session)
        send_welcome.options(conn=pg).enqueue(1)
        app.enqueue("t", conn="postgresql://")  # error: not a connection

    async def later(pg: psycopg.AsyncConnection[Any], session: AsyncSession) -> None:
        await app.enqueue_async("t", conn=pg)
        await app.enqueue_async("t", conn=session, delay=3)
        await send_welcome.options(conn=session).enqueue_async(1)
        app.enqueue("t", conn=session)  # error: an async session in a sync call
    """
)


def expected_error_lines(source: str) -> list[int]:
    return [n for n, line in enumerate(source.splitlines(), 1) if "# error" in line]


@pytest.mark.slow  # runs mypy, about 5 s
def test_mypy_rejects_wrong_arguments_options_and_connections(tmp_path: Path):
    source = tmp_path / "snippet.py"
    source.write_text(SNIPPET)
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-incremental", str(source)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    errors = [line for line in result.stdout.splitlines() if ": error:" in line]
    lines = sorted({int(line.split(":")[1]) for line in errors})
    assert lines == expected_error_lines(SNIPPET), result.stdout
