"""The vacuumer on a real PostgreSQL: the live table is vacuumed once its dead rows pile up."""

from __future__ import annotations

import asyncio
from typing import Any

import psycopg
from psycopg_pool import AsyncConnectionPool

from pgjobs.worker._vacuumer import Vacuumer

Conn = psycopg.Connection[tuple[Any, ...]]


def dead_rows(conn: Conn) -> int:
    conn.execute("SELECT pg_stat_force_next_flush()")
    row = conn.execute(
        "SELECT n_dead_tup FROM pg_stat_user_tables WHERE relid = 'pgjobs.jobs_live'::regclass"
    ).fetchone()
    return int(row[0]) if row else 0


def pass_once(dsn: str, dead: int) -> int:
    async def main() -> int:
        async with AsyncConnectionPool(dsn, min_size=1, max_size=1, open=False) as pool:
            vacuumer = Vacuumer(pool, dead_rows=dead)
            await vacuumer.run_once()
            return vacuumer.vacuums

    return asyncio.run(main())


def churn(conn: Conn, jobs: int) -> None:
    """Jobs enqueued and finished: each leaves dead rows in the live table."""
    conn.execute(
        "INSERT INTO pgjobs.jobs_live (task) SELECT 't' FROM generate_series(1, %s)", [jobs]
    )
    conn.execute("UPDATE pgjobs.jobs_live SET status = 'running', worker_id = 1")
    conn.execute("DELETE FROM pgjobs.jobs_live")


def test_vacuums_the_live_table_past_its_dead_rows_and_not_before(dsn: str, conn: Conn) -> None:
    churn(conn, 3000)
    before = dead_rows(conn)
    assert before >= 6000
    # Below the threshold: nothing.
    assert pass_once(dsn, dead=before + 1) == 0
    assert dead_rows(conn) == before
    # At it: one VACUUM, and the dead rows are gone.
    assert pass_once(dsn, dead=before) == 1
    assert dead_rows(conn) == 0


def test_the_leader_runs_it_unless_it_is_off(dsn: str) -> None:
    from pgjobs.worker import WorkerConfig
    from pgjobs.worker._db import Outage
    from pgjobs.worker._leader import leader_for

    async def duties(config: WorkerConfig) -> list[str]:
        async with AsyncConnectionPool(dsn, min_size=1, max_size=1, open=False) as pool:
            leader = leader_for(pool, config, dsn, Outage())
            return [duty.name for duty in leader.duties]

    assert "vacuumer" in asyncio.run(duties(WorkerConfig()))
    assert "vacuumer" not in asyncio.run(duties(WorkerConfig(vacuum_interval=None)))


def test_backs_off_while_the_horizon_is_held_and_resumes_after(dsn: str, conn: Conn) -> None:
    from pgjobs.worker import _vacuumer

    holder = psycopg.connect(dsn)
    holder.execute("BEGIN ISOLATION LEVEL REPEATABLE READ")
    holder.execute("SELECT count(*) FROM pgjobs.jobs_live").fetchone()
    churn(conn, 3000)
    dead = dead_rows(conn)

    async def passes(count: int) -> tuple[list[float | None], int]:
        async with AsyncConnectionPool(dsn, min_size=1, max_size=1, open=False) as pool:
            vacuumer = Vacuumer(pool, dead_rows=1000, interval=5.0)
            pauses = [await vacuumer.run_once() for _ in range(count)]
            holder.rollback()  # the horizon moves on
            pauses.append(await vacuumer.run_once())
            return pauses, vacuumer.vacuums

    try:
        pauses, vacuums = asyncio.run(passes(5))
    finally:
        holder.close()
    # Each VACUUM under the held snapshot removed nothing: the pause doubles
    # from the interval, up to its ceiling ...
    assert pauses[:5] == [5.0, 10.0, 20.0, _vacuumer.MAX_FUTILE_PAUSE, _vacuumer.MAX_FUTILE_PAUSE]
    # ... and once released, a VACUUM removes them and the cadence is back.
    assert pauses[5] is None
    assert vacuums == 6
    assert dead >= 6000
    assert dead_rows(conn) == 0
