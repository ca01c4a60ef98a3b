"""Applying the Alembic migrations, and checking that a database's schema fits this code."""

from __future__ import annotations

import contextlib
import importlib.resources
import io
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import psycopg
from psycopg.rows import dict_row

from pgjobs import _dsn, _sql
from pgjobs._connect import MIGRATE, connect
from pgjobs._names import MIGRATE_LOCK_KEY
from pgjobs.errors import DatabaseUnavailableError, SchemaVersionError

if TYPE_CHECKING:
    from alembic.config import Config

# Alembic and SQLAlchemy are imported inside the functions that migrate: a
# worker or the dashboard only compares SCHEMA_REVISION with the database's,
# and loading them cost every worker about 20 MB of memory for nothing.

#: The schema revision this code needs. A unit test pins it to Alembic's head.
SCHEMA_REVISION = "0019"

# Alembic keeps its running context in module globals, so two threads of one
# process must not migrate at once; across processes the advisory lock in
# migrations/env.py does the serialising.
_ALEMBIC = threading.Lock()

_RUN_MIGRATE = "Run `python -m pgjobs migrate` (or `pgjobs migrate --sql` to review the DDL first)."


def migrations_dir() -> Path:
    """Where the Alembic environment is: inside the wheel, or at the repository's top level."""
    packaged = importlib.resources.files("pgjobs") / "_migrations"
    if packaged.is_dir():
        return Path(str(packaged))
    checkout = Path(__file__).resolve().parent.parent / "migrations"
    if checkout.is_dir():
        return checkout
    raise RuntimeError("pgjobs is installed without its migrations; reinstall the package")


def _config(buffer: io.StringIO | None = None) -> Config:
    from alembic.config import Config

    config = Config(output_buffer=buffer) if buffer else Config()
    config.set_main_option("script_location", str(migrations_dir()))
    return config


def head() -> str:
    """The newest revision that ships with this code."""
    from alembic.script import ScriptDirectory

    revision = ScriptDirectory.from_config(_config()).get_current_head()
    if revision is None:
        raise RuntimeError(
            f"no migrations found in {migrations_dir()}; reinstall the pgjobs package"
        )
    return revision


def upgrade(dsn: str, revision: str = "head") -> tuple[str | None, str]:
    """Create or upgrade the pgjobs schema; safe to run twice, or from two processes at once.

    Returns:
        The revision before and after.

    Raises:
        DatabaseUnavailableError: the server cannot be reached.
        SchemaVersionError: the database has a revision this code does not know.
        psycopg.errors.InsufficientPrivilege: the user may not create the schema.
    """
    from alembic import command
    from alembic.util import CommandError
    from sqlalchemy import create_engine
    from sqlalchemy.pool import NullPool

    engine = create_engine(
        "postgresql+psycopg://",
        creator=lambda: _connect(dsn),
        poolclass=NullPool,
    )
    try:
        with _ALEMBIC, _unwrapped(), engine.begin() as connection:
            # Wait for a concurrent migrator before reading where this one
            # starts from (env.py takes the same transaction-scoped lock again;
            # it stacks), or both would report migrating "from nothing".
            _wait_for_migrators(connection.connection.driver_connection)
            before = current_revision(_psycopg(connection.connection.driver_connection))
            config = _config()
            config.attributes["connection"] = connection
            try:
                command.upgrade(config, revision)
            except CommandError as exc:
                raise SchemaVersionError(
                    f"cannot migrate: {exc}. The database was migrated by a newer pgjobs; "
                    "upgrade the pgjobs package."
                ) from None
            after = current_revision(_psycopg(connection.connection.driver_connection))
    finally:
        engine.dispose()
    if after is None:
        raise SchemaVersionError(
            f"the migration to {revision!r} left no revision in pgjobs.alembic_version; "
            "run `python -m pgjobs migrate` again, and report it if it persists"
        )
    return before, after


#: The first revision with pgjobs.job_history, and the function that fills it.
HISTORY_REVISION = "0009"


def move_finished(
    dsn: str, batch: int = 5000, progress: Callable[[int], None] | None = None
) -> int:
    """Move the finished jobs still in pgjobs.jobs_live into the history, in batches.

    Revision 0009 renames the old table to jobs_live and leaves its finished
    jobs there (visible through pgjobs.jobs all along); this moves them, each
    batch its own short transaction, so workers run meanwhile. The leader's
    pruner does the same, so stopping this half way loses nothing.

    Args:
        dsn: the database.
        batch: rows per transaction.
        progress: called with the running total after each batch.

    Returns:
        How many jobs moved.
    """
    total = 0
    with _connect(dsn) as conn:
        conn.autocommit = True
        while True:
            row = conn.execute(_sql.psycopg("history_move"), {"batch": batch}).fetchone()
            moved = int(str(row[0])) if row else 0
            total += moved
            if progress is not None and moved:
                progress(total)
            if moved < batch:
                return total


@contextlib.contextmanager
def _unwrapped() -> Iterator[None]:
    """Raise psycopg's own error instead of SQLAlchemy's wrapper around it.

    Alembic runs on SQLAlchemy, which wraps every driver error (a missing
    CREATE privilege arrives as sqlalchemy.exc.ProgrammingError); callers,
    and the CLI's clear messages, expect the psycopg error this module
    documents.
    """
    import sqlalchemy.exc

    try:
        yield
    except sqlalchemy.exc.DBAPIError as exc:
        if isinstance(exc.orig, psycopg.Error):
            raise exc.orig from None
        raise


def offline_sql(revision: str = "head") -> str:
    """The DDL that `upgrade` would run, for a DBA to review or apply by hand."""
    from alembic import command

    buffer = io.StringIO()
    with _ALEMBIC:
        command.upgrade(_config(buffer), revision, sql=True)
    return buffer.getvalue()


def _connect(dsn: str) -> psycopg.Connection[tuple[object, ...]]:
    try:
        return connect(dsn, MIGRATE)
    except psycopg.OperationalError as exc:
        raise DatabaseUnavailableError(_dsn.connect_error_message(dsn, exc)) from None


def _wait_for_migrators(conn: object) -> None:
    _psycopg(conn).execute(_sql.psycopg("migrate_lock"), {"key": MIGRATE_LOCK_KEY})


def _psycopg(conn: object) -> psycopg.Connection[Any]:
    """SQLAlchemy's driver connection, which is psycopg's (the URL says postgresql+psycopg)."""
    if not isinstance(conn, psycopg.Connection):
        raise TypeError(f"expected a psycopg Connection, got {type(conn).__name__}")
    return conn


def current_revision(conn: psycopg.Connection[Any]) -> str | None:
    """The database's pgjobs schema revision; None without a schema.

    Runs in the connection's transaction, and never fails it: a database
    without the schema is asked whether it has one first.
    """
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(_sql.psycopg("schema_versioned"), {})
        row = cur.fetchone()
        if row is None or not row["versioned"]:
            return None
        cur.execute(_sql.psycopg("schema_revision"), {})
        return _revision(cur.fetchone())


async def current_revision_async(conn: psycopg.AsyncConnection[Any]) -> str | None:
    """Async twin of `current_revision`."""
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(_sql.psycopg("schema_versioned"), {})
        row = await cur.fetchone()
        if row is None or not row["versioned"]:
            return None
        await cur.execute(_sql.psycopg("schema_revision"), {})
        return _revision(await cur.fetchone())


def _revision(row: dict[str, Any] | None) -> str | None:
    return None if row is None or row["version_num"] is None else str(row["version_num"])


def check_revision(found: str | None) -> None:
    """Raise a SchemaVersionError that says what to do, unless `found` is this code's revision."""
    if found == SCHEMA_REVISION:
        return
    if found is None:
        raise SchemaVersionError(f"the database has no pgjobs schema. {_RUN_MIGRATE}")
    if found < SCHEMA_REVISION:
        raise SchemaVersionError(
            f"the pgjobs schema is at revision {found}, but this code needs {SCHEMA_REVISION}. "
            f"{_RUN_MIGRATE}"
        )
    raise SchemaVersionError(
        f"the pgjobs schema is at revision {found}, newer than this code's {SCHEMA_REVISION}: "
        "the database was migrated by a newer pgjobs. Upgrade the pgjobs package on this host."
    )
