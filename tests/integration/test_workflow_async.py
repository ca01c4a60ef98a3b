"""`await chain(...).enqueue_async(conn=...)` and `await group(...).then(...).enqueue_async()`."""

from __future__ import annotations

import asyncio

import psycopg
import pytest

import pgjobs
from pgjobs.errors import ConfigurationError
from pgjobs.testing import drain
from tests.integration.test_workflows import dependencies, status


@pytest.fixture
def app(dsn):
    application = pgjobs.App(dsn, strict=False)
    yield application
    application.close()


def test_an_async_chain_is_written_in_the_callers_transaction_and_runs_in_order(app, dsn, conn):
    @app.task(name="async.link")
    async def link(name: str) -> str:
        parents = await pgjobs.current_job().parent_results_async()
        return "".join(parents.values()) + name

    def steps() -> pgjobs.Chain:
        return pgjobs.chain(link.job("a"), link.job("b"), link.job("c"))

    async def write(commit: bool) -> list[int]:
        async with await psycopg.AsyncConnection.connect(dsn) as caller:
            ids = await steps().enqueue_async(conn=caller)
            if not commit:
                await caller.rollback()
            return ids

    asyncio.run(write(commit=False))
    assert conn.execute("SELECT count(*) FROM pgjobs.jobs").fetchone() == (0,)
    ids = asyncio.run(write(commit=True))
    assert [status(conn, i) for i in ids] == ["queued", "blocked", "blocked"]
    assert dependencies(conn) == [(ids[0], ids[1]), (ids[1], ids[2])]
    drain(app, timeout=20)
    assert app.result(ids[2]) == "abc"


def test_an_async_group_on_the_apps_pool_runs_its_callback_with_the_results(app, conn):
    @app.task(name="async.square")
    async def square(n: int) -> int:
        return n * n

    @app.task(name="async.total")
    async def total() -> int:
        return sum((await pgjobs.current_job().parent_results_async()).values())

    async def write() -> list[int]:
        return (
            await pgjobs.group([square.job(n) for n in range(1, 5)])
            .then(total.job())
            .enqueue_async()
        )

    ids = asyncio.run(write())
    assert len(ids) == 5
    assert [status(conn, i) for i in ids] == ["queued"] * 4 + ["blocked"]
    drain(app, timeout=20)
    assert app.result(ids[-1]) == 1 + 4 + 9 + 16


def test_an_async_workflow_refuses_a_sync_connection_and_writes_nothing(app, dsn, conn):
    @app.task(name="async.noop")
    def noop() -> None:
        return None

    async def write() -> list[int]:
        with psycopg.connect(dsn) as caller:
            return await pgjobs.chain(noop.job(), noop.job()).enqueue_async(conn=caller)

    with pytest.raises(ConfigurationError, match=r"is synchronous; use enqueue\(\) with it"):
        asyncio.run(write())
    assert conn.execute("SELECT count(*) FROM pgjobs.jobs").fetchone() == (0,)
