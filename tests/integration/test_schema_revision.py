"""The schema revision is read in one place, by the migrator, the worker and the dashboard alike."""

from __future__ import annotations

import asyncio
import secrets

import psycopg
import pytest
from psycopg.conninfo import make_conninfo
from psycopg.rows import dict_row

from pgjobs import App, _migrate
from pgjobs.errors import SchemaVersionError
from pgjobs.web import _queries
from pgjobs.worker import Worker


@pytest.fixture
def empty_db(server_dsn):
    name = f"pgjobs_revision_{secrets.token_hex(4)}"
    with psycopg.connect(server_dsn, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    yield make_conninfo(server_dsn, dbname=name)
    with psycopg.connect(server_dsn, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _dashboard_revision(dsn: str) -> str | None:
    async def read() -> str | None:
        connect = psycopg.AsyncConnection.connect
        async with await connect(dsn, autocommit=True, row_factory=dict_row) as conn:
            return await _queries.schema_revision(conn)

    return asyncio.run(read())


def test_every_reader_sees_no_schema_then_the_migrated_revision(empty_db):
    for setup in (None, "CREATE SCHEMA pgjobs"):
        if setup:
            with psycopg.connect(empty_db, autocommit=True) as conn:
                conn.execute(setup)
        with psycopg.connect(empty_db) as conn:
            assert _migrate.current_revision(conn) is None
            # Asked inside a transaction, which the answer must not abort.
            assert conn.execute("SELECT 1").fetchone() == (1,)
        assert _dashboard_revision(empty_db) is None
        with pytest.raises(SchemaVersionError, match="no pgjobs schema"):
            asyncio.run(Worker(App(dsn=empty_db)).run())

    _migrate.upgrade(empty_db)
    with psycopg.connect(empty_db) as conn:
        assert _migrate.current_revision(conn) == _migrate.SCHEMA_REVISION
    assert _dashboard_revision(empty_db) == _migrate.SCHEMA_REVISION
