"""examples/fastapi_app.py over httpx: a committed request's job runs, a failed one leaves nothing.

The API runs in this process (httpx's ASGI transport, its lifespan entered by
the test), against the test database, with a real in-process worker.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import sys
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from types import ModuleType

import httpx
import psycopg
import pytest

from pgjobs.testing import drain_async

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "fastapi_app.py"


@pytest.fixture
def example(dsn: str) -> ModuleType:
    """The example module, imported once PGJOBS_DSN names the test database."""
    module = sys.modules.get("fastapi_app")
    if module is None:
        spec = importlib.util.spec_from_file_location("fastapi_app", EXAMPLE)
        assert spec is not None
        assert spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules["fastapi_app"] = module
        spec.loader.exec_module(module)
    return module


Scenario = Callable[[httpx.AsyncClient], Awaitable[None]]


def run(example: ModuleType, scenario: Scenario) -> None:
    """Run `scenario` with a client of the example's API, inside the API's lifespan."""

    async def main() -> None:
        async with client_of(example) as client:
            await scenario(client)

    asyncio.run(main())


@contextlib.asynccontextmanager
async def client_of(example: ModuleType) -> AsyncIterator[httpx.AsyncClient]:
    """The API's lifespan (which ASGITransport does not run) and an httpx client of it."""
    api = example.api
    async with api.router.lifespan_context(api):
        transport = httpx.ASGITransport(app=api)
        async with httpx.AsyncClient(transport=transport, base_url="http://localhost") as client:
            yield client


def orders(conn: psycopg.Connection[tuple[object, ...]], item: str) -> list[int]:
    rows = conn.execute("SELECT id FROM example_fastapi_orders WHERE item = %s", (item,))
    return [int(r[0]) for r in rows.fetchall()]


def receipt_jobs(conn: psycopg.Connection[tuple[object, ...]]) -> list[tuple[object, ...]]:
    return conn.execute(
        "SELECT id, args, status FROM pgjobs.jobs WHERE task = 'example_fastapi.send_receipt'"
        " ORDER BY id"
    ).fetchall()


def test_a_committed_request_makes_the_row_and_the_job_and_the_job_runs(
    example: ModuleType, conn: psycopg.Connection[tuple[object, ...]]
) -> None:
    item = f"teapot-{uuid.uuid4().hex[:8]}"

    async def scenario(client: httpx.AsyncClient) -> None:
        placed = await client.post("/orders", json={"item": item, "card": "4242"})
        assert placed.status_code == 201, placed.text
        order_id, job_id = placed.json()["order_id"], placed.json()["job_id"]
        # Committed: another connection (a worker's) sees both.
        assert orders(conn, item) == [order_id]
        assert receipt_jobs(conn) == [(job_id, {"order_id": order_id, "item": item}, "queued")]
        before = await client.get(f"/jobs/{job_id}")
        assert before.json() == {
            "id": job_id,
            "state": "queued",
            "result": None,
            "last_error": None,
        }

        worker = await drain_async(example.jobs, queues=(example.QUEUE,))
        assert worker.completed == 1
        after = await client.get(f"/jobs/{job_id}")
        assert after.json() == {
            "id": job_id,
            "state": "succeeded",
            "result": {"order_id": order_id, "sent": f"receipt for one {item}"},
            "last_error": None,
        }

    run(example, scenario)


def test_a_request_that_fails_after_enqueue_leaves_no_row_and_no_job(
    example: ModuleType, conn: psycopg.Connection[tuple[object, ...]]
) -> None:
    item = f"umbrella-{uuid.uuid4().hex[:8]}"

    async def scenario(client: httpx.AsyncClient) -> None:
        declined = await client.post("/orders", json={"item": item, "card": "declined"})
        assert declined.status_code == 402, declined.text
        assert orders(conn, item) == []
        assert receipt_jobs(conn) == []
        worker = await drain_async(example.jobs, queues=(example.QUEUE,))
        assert worker.completed == 0

    run(example, scenario)


def test_get_job_waits_for_the_end_while_a_worker_runs_it(
    example: ModuleType, conn: psycopg.Connection[tuple[object, ...]]
) -> None:
    async def scenario(client: httpx.AsyncClient) -> None:
        placed = await client.post("/orders", json={"item": "kettle", "card": "4242"})
        job_id = placed.json()["job_id"]
        waited, _ = await asyncio.gather(
            client.get(f"/jobs/{job_id}", params={"wait": 30}),
            drain_async(example.jobs, queues=(example.QUEUE,)),
        )
        assert waited.json()["state"] == "succeeded"
        missing = await client.get(f"/jobs/{job_id + 1000}")
        assert missing.status_code == 404

    run(example, scenario)


def test_waiting_for_a_job_holds_no_transaction_open(
    example: ModuleType, conn: psycopg.Connection[tuple[object, ...]]
) -> None:
    def idle_in_transaction() -> int:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity"
            " WHERE datname = current_database() AND state = 'idle in transaction'"
        ).fetchone()
        assert row is not None
        return int(row[0])

    async def look_while_it_waits() -> int:
        await asyncio.sleep(0.35)  # the request is between two looks, asleep
        return await asyncio.to_thread(idle_in_transaction)

    async def scenario(client: httpx.AsyncClient) -> None:
        placed = await client.post("/orders", json={"item": "saucer", "card": "4242"})
        job_id = placed.json()["job_id"]
        # No worker runs: the request waits out its second, listening.
        waited, idle = await asyncio.gather(
            client.get(f"/jobs/{job_id}", params={"wait": 1}), look_while_it_waits()
        )
        assert waited.json()["state"] == "queued"
        assert idle == 0

    run(example, scenario)


def test_the_dashboard_is_mounted_under_pgjobs(example: ModuleType) -> None:
    async def scenario(client: httpx.AsyncClient) -> None:
        placed = await client.post("/orders", json={"item": "cup", "card": "4242"})
        job_id = placed.json()["job_id"]
        assert (await client.get("/pgjobs/healthz")).status_code == 200
        # No tokens configured: the dashboard answers loopback clients, as httpx's transport is.
        shown = await client.get(f"/pgjobs/api/v1/jobs/{job_id}")
        assert shown.status_code == 200, shown.text
        assert shown.json()["task"] == "example_fastapi.send_receipt"

    run(example, scenario)
