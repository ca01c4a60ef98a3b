"""FastAPI with async SQLAlchemy: a row and its job in one AsyncSession transaction.

`POST /orders` saves an order and enqueues its receipt in the request's
transaction, then charges the card: a declined card answers 402 and rolls back
both the order and the job. `GET /jobs/{id}?wait=S` waits up to S seconds
for the job to end (`app.result_async`, woken by its completion) and answers
its state and result. The dashboard is mounted under `/pgjobs`.

Serve it from this directory (after `python -m pgjobs migrate`; `pip install
fastapi 'pgjobs[web,asyncio]'`, the web extra brings uvicorn), with a worker
beside it:

    PGJOBS_DSN=postgresql://postgres@localhost/postgres uvicorn fastapi_app:api
    PGJOBS_DSN=... python -m pgjobs worker fastapi_app:jobs

Run as a script, it drives the API in-process through httpx, runs the jobs
with an in-process worker, and prints what each request got back.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Annotated, Any

import structlog
from fastapi import Depends, FastAPI, HTTPException, Request
from psycopg.conninfo import conninfo_to_dict
from pydantic import BaseModel
from sqlalchemy import URL, String
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, create_async_engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

import pgjobs
import pgjobs.web

jobs = pgjobs.App()  # PGJOBS_DSN, read when first needed
QUEUE = "example-fastapi"


@jobs.task(name="example_fastapi.send_receipt", queue=QUEUE)
async def send_receipt(order_id: int, item: str) -> dict[str, Any]:
    """Email the receipt of a paid order (here: pretend to)."""
    await asyncio.sleep(0.01)
    return {"order_id": order_id, "sent": f"receipt for one {item}"}


class Base(DeclarativeBase):
    """The example's ORM base."""


class Order(Base):
    """A row of the example's own table."""

    __tablename__ = "example_fastapi_orders"
    id: Mapped[int] = mapped_column(primary_key=True)
    item: Mapped[str] = mapped_column(String(100))


class OrderIn(BaseModel):
    """The body of `POST /orders`."""

    item: str
    card: str


class OrderOut(BaseModel):
    """What `POST /orders` answers: the order and the job that will send its receipt."""

    order_id: int
    job_id: int


class JobOut(BaseModel):
    """What `GET /jobs/{id}` answers."""

    id: int
    state: str
    result: Any = None
    last_error: str | None = None


class CardDeclinedError(Exception):
    """The payment step refused the card."""


async def charge(card: str) -> None:
    """Charge the card (here: decline one test card, accept the others)."""
    if card == "declined":
        raise CardDeclinedError(card)


def sqlalchemy_url(dsn: str) -> URL:
    """A `postgresql+psycopg://` URL for a libpq DSN, whether a URL or `key=value` pairs."""
    params = {k: str(v) for k, v in conninfo_to_dict(dsn).items() if v is not None}
    port = params.pop("port", None)
    return URL.create(
        "postgresql+psycopg",
        username=params.pop("user", None),
        password=params.pop("password", None),
        # A Unix socket directory is passed as ?host=/path, which the URL's host cannot hold.
        host=None if params.get("host", "").startswith("/") else params.pop("host", None),
        port=int(port) if port else None,
        database=params.pop("dbname", None),
        query=params,
    )


# Tokens from PGJOBS_DASHBOARD_TOKENS; without any, it answers loopback requests only.
dashboard = pgjobs.web.create_app(jobs)


@contextlib.asynccontextmanager
async def lifespan(api: FastAPI) -> AsyncIterator[None]:
    """Open the engine for the requests; close it, the dashboard's pool and the App's at exit."""
    engine = create_async_engine(sqlalchemy_url(jobs.dsn))
    async with engine.begin() as conn:
        await conn.run_sync(Base.metadata.create_all)
    api.state.engine = engine
    # Starlette runs no lifespan of a mounted app: run the dashboard's inside ours.
    async with dashboard.router.lifespan_context(dashboard):
        yield
    await engine.dispose()
    await jobs.aclose()


api = FastAPI(title="shop", lifespan=lifespan)
api.mount("/pgjobs", dashboard)


async def session(request: Request) -> AsyncIterator[AsyncSession]:
    """One AsyncSession per request."""
    engine: AsyncEngine = request.app.state.engine
    async with AsyncSession(engine, expire_on_commit=False) as s:
        yield s


Session = Annotated[AsyncSession, Depends(session)]


@api.post("/orders", status_code=201)
async def place_order(body: OrderIn, db: Session) -> OrderOut:
    """Save the order and enqueue its receipt in one transaction, then charge the card."""
    async with db.begin():  # commits when the block ends; an exception rolls it back
        order = Order(item=body.item)
        db.add(order)
        await db.flush()  # the INSERT runs now, so the order has its id
        # conn=db: the job is written in this session's transaction. Workers
        # see it only at commit, and it never existed if the request fails.
        job_id = await send_receipt.options(conn=db).enqueue_async(order.id, body.item)
        try:
            await charge(body.card)
        except CardDeclinedError:
            # Raised inside the block: the order and the job roll back together.
            raise HTTPException(status_code=402, detail="card declined") from None
    if job_id is None:  # only with a fingerprint and on_conflict="skip", not used here
        raise RuntimeError("the receipt job was not enqueued")
    return OrderOut(order_id=order.id, job_id=job_id)


@api.get("/jobs/{job_id}")
async def get_job(job_id: int, wait: float = 0.0) -> JobOut:
    """A job's state and result; with `?wait=S`, wait up to S seconds (at most 30) for its end."""
    if wait > 0:
        # Woken by the job's completion (LISTEN), not by polling; how the job
        # ended is read below, so its outcome's errors are not raised here.
        with contextlib.suppress(
            TimeoutError, pgjobs.errors.JobFailedError, pgjobs.errors.JobCancelledError
        ):
            await jobs.result_async(job_id, timeout=min(wait, 30.0))
    try:
        job = await jobs.get_job_async(job_id)
    except pgjobs.errors.JobNotFoundError:
        raise HTTPException(status_code=404, detail=f"no job has id {job_id}") from None
    last_error = job.errors[-1].get("message") if job.errors else None
    return JobOut(id=job.id, state=job.status.value, result=job.result, last_error=last_error)


async def main() -> None:
    """Place a declined order and a paid one, run the receipt job, and read it back."""
    import httpx  # the script's own client; serving the API does not need it

    from pgjobs.testing import drain_async

    async with api.router.lifespan_context(api):
        transport = httpx.ASGITransport(app=api)
        async with httpx.AsyncClient(transport=transport, base_url="http://localhost") as client:
            declined = await client.post("/orders", json={"item": "umbrella", "card": "declined"})
            print(f"declined order: {declined.status_code} {declined.json()}")
            paid = await client.post("/orders", json={"item": "teapot", "card": "4242"})
            print(f"paid order: {paid.status_code} {paid.json()}")
            job_id = paid.json()["job_id"]
            before = (await client.get(f"/jobs/{job_id}")).json()
            print(f"before the worker: {before['state']}")
            # The worker and a request waiting for the job's end, side by side.
            waited, _ = await asyncio.gather(
                client.get(f"/jobs/{job_id}", params={"wait": 30}),
                drain_async(jobs, queues=(QUEUE,)),
            )
            print(f"after the worker: {waited.json()['state']} {waited.json()['result']}")
            health = await client.get("/pgjobs/healthz")
            print(f"dashboard at /pgjobs: {health.status_code}")


if __name__ == "__main__":
    # pgjobs logs through structlog, which prints everything (even debug) until
    # configured: keep the worker's info lines, drop its per-job debug lines.
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.INFO))
    asyncio.run(main())
