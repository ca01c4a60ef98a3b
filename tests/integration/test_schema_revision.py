"""The schema revision is read in one place, by the migrator, the worker and the dashboard alike."""

from __future__ import annotations

import asyncio
import secrets
import shutil

import psycopg
import pytest
from psycopg.conninfo import make_conninfo
from psycopg.rows import dict_row

from pgjobs import App, _migrate
from pgjobs._window import Schema
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


def _next_revision(tmp_path, monkeypatch, oldest_code: str) -> str:
    """Point migrations at a copy with one more revision, declaring `oldest_code`; its name."""
    current = _migrate.SCHEMA_REVISION
    following = f"{int(current) + 1:04d}"
    copy = tmp_path / "migrations"
    shutil.copytree(_migrate.migrations_dir(), copy, ignore=shutil.ignore_patterns("__pycache__"))
    (copy / "versions" / f"{following}_next.py").write_text(
        f"revision = {following!r}\ndown_revision = {current!r}\n"
        f"oldest_code = {oldest_code!r}\nbranch_labels = None\ndepends_on = None\n\n\n"
        "def upgrade() -> None:\n    pass\n\n\ndef downgrade() -> None:\n    pass\n"
    )
    monkeypatch.setenv(_migrate.MIGRATIONS_DIR_ENV, str(copy))
    return following


def _dashboard_schema(dsn: str) -> Schema | None:
    async def read() -> Schema | None:
        connect = psycopg.AsyncConnection.connect
        async with await connect(dsn, autocommit=True, row_factory=dict_row) as conn:
            return await _queries.schema(conn)

    return asyncio.run(read())


def test_a_newer_revision_inside_the_window_is_accepted_and_one_outside_refused(
    empty_db, tmp_path, monkeypatch
):
    _migrate.upgrade(empty_db)
    # An expand: it declares that this code still works against it.
    following = _next_revision(tmp_path / "expand", monkeypatch, _migrate.SCHEMA_REVISION)
    assert _migrate.upgrade(empty_db) == (_migrate.SCHEMA_REVISION, following)
    found = _dashboard_schema(empty_db)
    assert found == Schema(following, _migrate.SCHEMA_REVISION)
    _migrate.check_schema(found)  # what the worker, its readiness and /healthz ask
    with psycopg.connect(empty_db, autocommit=True) as conn:
        # A contract of the same revision: code before it no longer works.
        conn.execute(
            "UPDATE pgjobs.schema_window SET oldest_code = %s WHERE revision = %s",
            [following, following],
        )
        assert _migrate.current_schema(conn) == Schema(following, following)
    with pytest.raises(SchemaVersionError, match=f"at revision {following}, which works with"):
        asyncio.run(Worker(App(dsn=empty_db)).run())
