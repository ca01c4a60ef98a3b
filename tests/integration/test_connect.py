"""Connections from the factory, on a real PostgreSQL: their names, settings and keepalives."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
from typing import Any

import psycopg
import pytest
from psycopg.conninfo import make_conninfo
from psycopg.rows import dict_row

import pgjobs
from pgjobs import _connect, _sql
from pgjobs._connect import Role
from pgjobs.web._db import Database
from pgjobs.worker import Worker, WorkerConfig

Conn = psycopg.Connection[Any]


def application_name(conn: Conn, backend_pid: int) -> str:
    """What pg_stat_activity shows for a backend."""
    row = conn.execute(
        "SELECT application_name FROM pg_stat_activity WHERE pid = %s", (backend_pid,)
    ).fetchone()
    assert row is not None
    return str(row[0])


def setting(conn: psycopg.Connection[Any], name: str) -> str:
    row = conn.execute("SELECT current_setting(%s)", (name,)).fetchone()
    assert row is not None
    return str(row[0])


@pytest.mark.parametrize(
    "role",
    [
        _connect.WORKER,
        _connect.LEADER,
        _connect.LISTENER,
        _connect.DASHBOARD,
        _connect.APP,
        _connect.CLI,
        _connect.MIGRATE,
    ],
)
def test_pg_stat_activity_shows_the_roles_name(dsn: str, conn: Conn, role: Role) -> None:
    with _connect.connect(dsn, role) as mine:
        shown = application_name(conn, mine.info.backend_pid)
    assert shown == role.application_name(os.getpid())


def test_a_dashboard_connection_has_its_statement_timeout(dsn: str) -> None:
    with _connect.connect(dsn, _connect.DASHBOARD) as mine:
        assert mine.execute("SHOW statement_timeout").fetchone() == ("5s",)
    role = _connect.DASHBOARD.with_settings(statement_timeout=1234)
    with _connect.connect(dsn, role) as mine:
        assert mine.execute("SHOW statement_timeout").fetchone() == ("1234ms",)
    with _connect.connect(dsn, _connect.APP) as mine:
        assert mine.execute("SHOW statement_timeout").fetchone() == ("0",)


def test_a_claim_commits_without_waiting_for_the_disk(dsn: str, conn: Conn) -> None:
    # The claim sets synchronous_commit for its own transaction only, so it
    # needs no setting on the connection (none reaches a transaction pooler).
    producer = pgjobs.App(dsn, strict=False)
    try:
        producer.enqueue("anything")
    finally:
        producer.close()
    with conn.transaction():
        claimed = conn.execute(
            _sql.psycopg("claim_one_queue"),
            {
                "queue": "default",
                "after_priority": -1,
                "after_run_at": dt.datetime(1, 1, 1, tzinfo=dt.UTC),
                "after_id": 0,
                "limit": 1,
                "worker_id": 1,
            },
        ).fetchall()
        assert len(claimed) == 1
        assert setting(conn, "synchronous_commit") == "off"
    assert setting(conn, "synchronous_commit") == "on"


def libpq_options(conn: psycopg.Connection[Any]) -> dict[str, str | None]:
    """Every connection option libpq used, defaults included."""
    return {
        opt.keyword.decode(): opt.val.decode() if opt.val is not None else None
        for opt in conn.pgconn.info
    }


def test_connections_carry_keepalives_and_a_connect_timeout(dsn: str) -> None:
    with _connect.connect(dsn, _connect.LISTENER) as mine:
        used = libpq_options(mine)
    assert {key: used[key] for key in used if key.startswith(("keepalives", "connect_"))} == {
        "keepalives": "1",
        "keepalives_idle": str(_connect.KEEPALIVES_IDLE),
        "keepalives_interval": str(_connect.KEEPALIVES_INTERVAL),
        "keepalives_count": str(_connect.KEEPALIVES_COUNT),
        "connect_timeout": str(_connect.CONNECT_TIMEOUT),
    }


def test_the_dsns_application_name_and_options_win(dsn: str, conn: Conn) -> None:
    users = make_conninfo(
        dsn, application_name="billing", options="-c search_path=shop", keepalives_idle=30
    )
    with _connect.connect(users, _connect.DASHBOARD) as mine:
        assert application_name(conn, mine.info.backend_pid) == "billing"
        assert setting(mine, "search_path") == "shop"
        assert setting(mine, "statement_timeout") == "5s"  # the role's own setting stays
        assert libpq_options(mine)["keepalives_idle"] == "30"


def test_row_factory_and_autocommit_stay_the_callers_choice(dsn: str) -> None:
    with _connect.connect(dsn, _connect.CLI, row_factory=dict_row, autocommit=True) as mine:
        assert mine.autocommit
        assert mine.execute("SELECT 1 AS one").fetchone() == {"one": 1}
    with _connect.connect(dsn, _connect.CLI) as mine:
        assert not mine.autocommit
        assert mine.execute("SELECT 1").fetchone() == (1,)


def test_a_sync_pool_names_its_connections(dsn: str, conn: Conn) -> None:
    pool = _connect.pool(dsn, _connect.APP, min_size=1, max_size=1)
    pool.open(wait=True)
    try:
        with pool.connection() as pooled:
            assert application_name(conn, pooled.info.backend_pid) == "pgjobs-app"
    finally:
        pool.close()


def test_an_apps_pool_is_named_pgjobs_app(dsn: str, conn: Conn) -> None:
    app = pgjobs.App(dsn)
    try:
        with app.connection() as pooled:
            assert application_name(conn, pooled.info.backend_pid) == "pgjobs-app"
    finally:
        app.close()


def test_the_dashboards_pool_applies_its_name_and_timeout(dsn: str, conn: Conn) -> None:
    async def main() -> dict[str, Any] | None:
        database = Database(dsn, statement_timeout=2500)
        try:
            async with database.connection() as pooled:
                cur = await pooled.execute(
                    "SELECT current_setting('statement_timeout') AS timeout, "
                    "current_setting('application_name') AS name"
                )
                return await cur.fetchone()
        finally:
            await database.close()

    assert asyncio.run(main()) == {"timeout": "2500ms", "name": "pgjobs-dashboard"}


def test_a_running_worker_names_each_of_its_connections(dsn: str, conn: Conn) -> None:
    names = {
        role.application_name(os.getpid())
        for role in (_connect.WORKER, _connect.LEADER, _connect.LISTENER)
    }

    def shown() -> set[str]:
        rows = conn.execute(
            "SELECT DISTINCT application_name FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        ).fetchall()
        return {str(row[0]) for row in rows}

    async def main() -> tuple[set[str], str]:
        worker = Worker(pgjobs.App(dsn), WorkerConfig(queues=("default",), poll_interval=0.05))
        run = asyncio.create_task(worker.run())
        try:
            for _ in range(600):  # the leader and the listener connect in the background
                if names <= shown():
                    break
                await asyncio.sleep(0.05)
            # The fetcher's and completer's own connections share the pool's
            # name: ask the pool itself which name its connections carry.
            assert worker._pool is not None
            async with worker._pool.connection() as pooled:
                pool_name = application_name(conn, pooled.info.backend_pid)
            return shown(), pool_name
        finally:
            worker.request_stop()
            await run

    seen, pool_name = asyncio.run(main())
    assert names <= seen
    assert pool_name == _connect.WORKER.application_name(os.getpid())
