"""Applying the Alembic migrations, and checking that a database's schema fits this code."""

from __future__ import annotations

import contextlib
import importlib.resources
import io
import os
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import psycopg
from psycopg.rows import dict_row

from pgjobs import _dsn, _sql, _window
from pgjobs._connect import MIGRATE, connect
from pgjobs._names import MIGRATE_LOCK_KEY
from pgjobs.errors import (
    ConfigurationError,
    DatabaseUnavailableError,
    IncompatibleWorkersError,
    SchemaVersionError,
)

if TYPE_CHECKING:
    from alembic.config import Config

# Alembic and SQLAlchemy are imported inside the functions that migrate: a
# worker or the dashboard only compares its window with the database's,
# and loading them cost every worker about 20 MB of memory for nothing.

#: The schema revision this code was written for. A unit test pins it to Alembic's head.
SCHEMA_REVISION = "0021"

#: The oldest schema revision this code's statements still run against: a
#: worker or dashboard of this code starts on any revision from here to
#: SCHEMA_REVISION (and on newer ones that declare they still work with it).
#: Lower it only for a release whose code is known to run on an older
#: revision (it does not use what the newer migrations added).
OLDEST_SCHEMA = SCHEMA_REVISION

#: This code's window, as `_window` judges it.
CODE = _window.Code(SCHEMA_REVISION, OLDEST_SCHEMA)

#: Where `migrate` finds the Alembic environment instead of the packaged one:
#: for testing a migration of your own against a copy of the migrations.
MIGRATIONS_DIR_ENV = "PGJOBS_MIGRATIONS_DIR"

#: A worker whose heartbeat is older than this is not running, for `migrate`
#: (the worker's default --stale-after).
RUNNING_WITHIN = 30.0

# Alembic keeps its running context in module globals, so two threads of one
# process must not migrate at once; across processes the advisory lock in
# migrations/env.py does the serialising.
_ALEMBIC = threading.Lock()


def migrations_dir() -> Path:
    """Where the Alembic environment is: $PGJOBS_MIGRATIONS_DIR, inside the wheel, or the checkout.

    Raises:
        ConfigurationError: $PGJOBS_MIGRATIONS_DIR names no directory with an env.py.
    """
    override = os.environ.get(MIGRATIONS_DIR_ENV)
    if override:
        path = Path(override)
        if not (path / "env.py").is_file():
            raise ConfigurationError(
                f"${MIGRATIONS_DIR_ENV} is {override!r}, which is not an Alembic environment "
                "(no env.py in it); point it at a copy of pgjobs' migrations directory, or unset it"
            )
        return path
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


def target(revision: str = "head") -> _window.Schema:
    """A revision of the migrations, with the oldest code revision it declares it works with.

    Raises:
        SchemaVersionError: no migration has this revision.
    """
    from alembic.script import ScriptDirectory
    from alembic.util import CommandError

    try:
        script = ScriptDirectory.from_config(_config()).get_revision(revision)
    except CommandError as exc:
        raise SchemaVersionError(
            f"no pgjobs migration has the revision {revision!r}: {exc}"
        ) from None
    if script is None:
        raise SchemaVersionError(f"no pgjobs migration has the revision {revision!r}")
    oldest = getattr(script.module, "oldest_code", None)
    return _window.Schema(script.revision, None if oldest is None else str(oldest))


def upgrade(
    dsn: str,
    revision: str = "head",
    *,
    force: bool = False,
    warn: Callable[[str], None] | None = None,
) -> tuple[str | None, str]:
    """Create or upgrade the pgjobs schema; safe to run twice, or from two processes at once.

    Before changing a schema that workers are using, it reads the live ones
    from pgjobs.workers (a heartbeat within RUNNING_WITHIN seconds): if the
    target revision does not work with the code of one of them, it refuses,
    unless `force`.

    Args:
        dsn: the database.
        revision: the revision to reach; "head" is the newest one shipped.
        force: migrate even if running workers would be left outside their window.
        warn: called with the refusal's message when `force` overrides it.

    Returns:
        The revision before and after.

    Raises:
        DatabaseUnavailableError: the server cannot be reached.
        SchemaVersionError: the database has a revision this code does not know.
        IncompatibleWorkersError: running workers' code does not work with the target
            revision, and `force` is false. Nothing was changed.
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
            conn = _psycopg(connection.connection.driver_connection)
            _wait_for_migrators(conn)
            before = current_revision(conn)
            if before is not None:
                _check_workers(conn, before, revision, force, warn)
            config = _config()
            config.attributes["connection"] = connection
            try:
                command.upgrade(config, revision)
            except CommandError as exc:
                raise SchemaVersionError(
                    f"cannot migrate: {exc}. The database was migrated by a newer pgjobs; "
                    "upgrade the pgjobs package."
                ) from None
            after = current_revision(conn)
    finally:
        engine.dispose()
    if after is None:
        raise SchemaVersionError(
            f"the migration to {revision!r} left no revision in pgjobs.alembic_version; "
            "run `python -m pgjobs migrate` again, and report it if it persists"
        )
    return before, after


def _check_workers(
    conn: psycopg.Connection[Any],
    before: str,
    revision: str,
    force: bool,
    warn: Callable[[str], None] | None,
) -> None:
    """Refuse (or, with `force`, warn) when live workers would fall outside the target's window."""
    try:
        goal = target(revision)
    except SchemaVersionError:
        return  # a revision the scripts do not know: Alembic's own error says so, next
    if goal.revision <= before:
        return  # nothing to apply (or a database newer than these scripts, refused next)
    workers = running_workers(conn)
    left_out = _window.outside(workers, before, goal)
    if not left_out:
        return
    if not force:
        raise IncompatibleWorkersError(_window.refusal(left_out, before, goal), left_out)
    if warn is not None:
        warn(_window.refusal(left_out, before, goal, forced=True))


def running_workers(conn: psycopg.Connection[Any]) -> list[_window.RunningWorker]:
    """The workers with a heartbeat within RUNNING_WITHIN seconds, with their code revisions."""
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(_sql.psycopg("migrate_workers"), {"stale_after": RUNNING_WITHIN})
        return [_window.RunningWorker(**row) for row in cur.fetchall()]


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


def current_schema(conn: psycopg.Connection[Any]) -> _window.Schema | None:
    """The database's revision and the oldest code it declares it works with; None without one.

    Like `current_revision`, never fails the connection's transaction.
    """
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(_sql.psycopg("schema_versioned"), {})
        row = cur.fetchone()
        if row is None or not row["versioned"]:
            return None
        cur.execute(_sql.psycopg("schema_windowed"), {})
        windowed = cur.fetchone()
        name = "schema_window" if windowed and windowed["windowed"] else "schema_revision"
        cur.execute(_sql.psycopg(name), {})
        return _schema(cur.fetchone())


async def current_schema_async(conn: psycopg.AsyncConnection[Any]) -> _window.Schema | None:
    """Async twin of `current_schema`."""
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(_sql.psycopg("schema_versioned"), {})
        row = await cur.fetchone()
        if row is None or not row["versioned"]:
            return None
        await cur.execute(_sql.psycopg("schema_windowed"), {})
        windowed = await cur.fetchone()
        name = "schema_window" if windowed and windowed["windowed"] else "schema_revision"
        await cur.execute(_sql.psycopg(name), {})
        return _schema(await cur.fetchone())


def _schema(row: dict[str, Any] | None) -> _window.Schema | None:
    revision = _revision(row)
    if revision is None or row is None:
        return None
    oldest = row.get("oldest_code")
    return _window.Schema(revision, None if oldest is None else str(oldest))


def check_schema(found: _window.Schema | None) -> None:
    """Raise a SchemaVersionError that says what to do, unless `found` is inside this code's window.

    The window: any revision from OLDEST_SCHEMA to SCHEMA_REVISION, and any
    newer one that declares it still works with SCHEMA_REVISION's code.
    """
    message = _window.problem(CODE, found)
    if message is not None:
        raise SchemaVersionError(message)
