"""A database for tests: created on the configured (or an embedded) server, migrated, dropped."""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Iterator, Mapping
from typing import Any

import psycopg
from psycopg import sql
from psycopg.conninfo import make_conninfo

from pgjobs import _connect, _dsn, _migrate, _sql
from pgjobs._app import App
from pgjobs._embedded import EmbeddedPostgres
from pgjobs.errors import ConfigurationError, DatabaseUnavailableError

__all__ = [
    "SERVER_ENV_VARS",
    "configured_server",
    "empty_tables",
    "migrated_database",
    "server",
    "use_database",
]

#: Where the server for test databases is read from, first set wins.
#: PGJOBS_TEST_DSN comes first, so tests never need the application's own
#: PGJOBS_DSN or DATABASE_URL, which often name a database in use.
SERVER_ENV_VARS = ("PGJOBS_TEST_DSN", *_dsn.ENV_VARS)

_HOW_TO_SET = (
    "Set PGJOBS_TEST_DSN to a PostgreSQL server on which the tests may create "
    "and drop databases, for example postgresql://postgres@127.0.0.1:5432/postgres"
)


def configured_server(environ: Mapping[str, str]) -> str | None:
    """The server's DSN from `environ` (see SERVER_ENV_VARS), or None when none is set.

    Raises:
        ConfigurationError: the DSN found is malformed.
    """
    for var in SERVER_ENV_VARS:
        value = environ.get(var)
        if value:
            return _dsn.normalise(value)
    return None


@contextlib.contextmanager
def server() -> Iterator[str]:
    """The configured server's DSN; without one, an embedded PostgreSQL's, stopped on exit.

    Nothing is probed: with no DSN in the environment, the embedded server
    (the `[embedded]` extra) starts, even when a server listens on localhost.

    Raises:
        ConfigurationError: no DSN is set and the embedded server is not installed.
    """
    configured = configured_server(os.environ)
    if configured is not None:
        yield configured
        return
    embedded = EmbeddedPostgres()
    try:
        try:
            embedded.start()
        except ConfigurationError:  # pgserver is not installed
            raise ConfigurationError(
                f"no PostgreSQL server for the tests: none of {', '.join(SERVER_ENV_VARS)} "
                f"is set, and the embedded server is not installed. {_HOW_TO_SET}; "
                "or install the embedded one: pip install 'pgjobs[embedded]'"
            ) from None
        yield embedded.dsn
    finally:
        embedded.stop()


@contextlib.contextmanager
def _admin(server_dsn: str) -> Iterator[psycopg.Connection[Any]]:
    try:
        conn = _connect.connect(server_dsn, _connect.APP, autocommit=True)
    except psycopg.OperationalError as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DatabaseUnavailableError(
            f"cannot connect to the PostgreSQL server for the tests at "
            f"{_dsn.redact(server_dsn)!r}: {reason}. {_HOW_TO_SET}"
        ) from None
    with conn:
        yield conn


@contextlib.contextmanager
def migrated_database(server_dsn: str) -> Iterator[str]:
    """Create a database of a unique name on `server_dsn`, migrate it, and drop it on exit.

    Yields:
        The new database's DSN.

    Raises:
        DatabaseUnavailableError: the server cannot be reached.
        ConfigurationError: the server's role may not create databases.
    """
    name = f"pgjobs_test_{os.getpid()}_{secrets.token_hex(3)}"
    with _admin(server_dsn) as admin:
        try:
            admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        except psycopg.errors.InsufficientPrivilege:
            raise ConfigurationError(
                f"the role of {_dsn.redact(server_dsn)!r} may not create databases. "
                f"Grant it CREATEDB, or: {_HOW_TO_SET}"
            ) from None
    try:
        dsn = make_conninfo(server_dsn, dbname=name)
        _migrate.upgrade(dsn)
        yield dsn
    finally:
        with _admin(server_dsn) as admin:
            # FORCE ends the connections a test left open (an App's pool).
            admin.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


def empty_tables(dsn: str) -> None:
    """Delete every row of the pgjobs tables (jobs, workers, queues, schedules) at `dsn`."""
    with _connect.connect(dsn, _connect.APP, autocommit=True) as conn:
        conn.execute(_sql.psycopg("testing_reset"), {})


@contextlib.contextmanager
def use_database(app: App, dsn: str) -> Iterator[App]:
    """Point `app` at `dsn` inside the block, then back at the database it had.

    The App's pools are closed on the way in and out, so none of its
    connections goes to the other database.
    """
    # The App's own attribute, not its `dsn` property: that one would resolve
    # an App built without a DSN from the environment, and the App must come
    # back unresolved, as it was.
    saved = app._dsn
    _close_pools(app)
    app.dsn = dsn
    try:
        yield app
    finally:
        _close_pools(app)
        app._dsn = saved


def _close_pools(app: App) -> None:
    app.close()
    pools, app._async_pools = app._async_pools, {}
    for loop, pool in pools.items():
        # An async pool can be closed only in its own event loop, and only
        # from outside it; one whose loop has ended is left to the garbage collector.
        if not loop.is_closed() and not loop.is_running():
            loop.run_until_complete(pool.close())
