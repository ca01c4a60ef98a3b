"""Enqueue inside a SQLAlchemy Session's transaction: gone at rollback, there at commit.

Run it (after `python -m pgjobs migrate` on that database):

    PGJOBS_DSN=postgresql://postgres@localhost/postgres python examples/sqlalchemy_session.py
"""

from __future__ import annotations

import logging

import structlog
from psycopg.conninfo import conninfo_to_dict
from sqlalchemy import URL, String, create_engine, text
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

import pgjobs
from pgjobs.testing import drain

app = pgjobs.App()
QUEUE = "example-sqlalchemy"


@app.task(name="example_sqlalchemy.ship_order", queue=QUEUE)
def ship_order(order_id: int) -> str:
    """Hand a paid order to the warehouse (here: pretend to)."""
    return f"order {order_id} shipped"


class Base(DeclarativeBase):
    """The example's ORM base."""


class Order(Base):
    """A row of the example's own table."""

    __tablename__ = "example_orders"
    id: Mapped[int] = mapped_column(primary_key=True)
    item: Mapped[str] = mapped_column(String(100))


class OutOfStockError(Exception):
    """Raised inside the transaction to show that the job goes away with the order."""


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


def place_order(session: Session, item: str, *, in_stock: bool) -> int:
    """Save an order and queue its shipping in the session's transaction; returns the order id."""
    order_id = -1
    try:
        with session.begin():
            order = Order(item=item)
            session.add(order)
            session.flush()  # the INSERT runs now, so the order has its id
            order_id = order.id
            # conn=session: the job is written through the session's connection,
            # inside its transaction. It commits or rolls back with the order.
            ship_order.options(conn=session).enqueue(order_id)
            if not in_stock:
                raise OutOfStockError(item)  # leaving the block with an error rolls back
    except OutOfStockError:
        pass
    return order_id


def main() -> None:
    """Place one order that is rolled back and one that is committed, then run the job."""
    engine = create_engine(sqlalchemy_url(app.dsn))
    with engine.begin() as conn:
        conn.execute(
            text(
                "CREATE TABLE IF NOT EXISTS example_orders "
                "(id serial PRIMARY KEY, item varchar(100) NOT NULL)"
            )
        )

    def jobs_for(order_id: int) -> int:
        # Counted on another connection: what a worker could see.
        with engine.connect() as other:
            found = other.execute(
                text("SELECT count(*) FROM pgjobs.jobs WHERE task = :task AND args @> :args"),
                {"task": ship_order.name, "args": f'{{"order_id": {order_id}}}'},
            )
            return int(found.scalar_one())

    with Session(engine) as session:
        lost = place_order(session, "umbrella", in_stock=False)
        print(f"after rollback: {jobs_for(lost)} jobs for order {lost}")
        kept = place_order(session, "teapot", in_stock=True)
        print(f"after commit: {jobs_for(kept)} job for order {kept}")

    drain(app, queues=(QUEUE,))
    with engine.connect() as conn:
        status = conn.execute(
            text("SELECT status::text FROM pgjobs.jobs WHERE task = :task AND args @> :args"),
            {"task": ship_order.name, "args": f'{{"order_id": {kept}}}'},
        ).scalar_one()
    print(f"the worker ran it: {status}")
    engine.dispose()
    app.close()


if __name__ == "__main__":
    # pgjobs logs through structlog, which prints everything (even debug) until
    # configured: keep the worker's info lines, drop its per-job debug lines.
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.INFO))
    main()
