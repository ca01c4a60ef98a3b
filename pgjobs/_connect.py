"""The one place pgjobs opens PostgreSQL connections and pools, each for a named role.

Every connection pgjobs makes gets, from here:

- an application name, so operators can tell its connections apart in
  pg_stat_activity (and the dashboard can tell which worker leads);
- a connect timeout, so an unreachable server fails a connect in seconds;
- TCP keepalives, so a dead server or network is noticed within about
  `KEEPALIVES_IDLE + KEEPALIVES_INTERVAL * KEEPALIVES_COUNT` seconds of
  silence (11 s), not the operating system's two hours;
- its role's session settings (statement_timeout for the dashboard), sent
  as the startup `options` parameter.

A connection made with `pooled=True` goes through a transaction-pooling
PgBouncer, which refuses the `options` startup parameter and, before 1.21,
cannot keep a prepared statement (the next transaction may run on another
server connection). So it sends no session settings (the role's settings are
left out: the dashboard then has no statement timeout of its own; PgBouncer's
`query_timeout`, or a setting on the PostgreSQL role, can stand in) and
never prepares a statement (`prepare_threshold=None`).

What the user's DSN says wins over these defaults: a DSN (or PGAPPNAME) that
names the application keeps its name, and a DSN's connect_timeout or
keepalives_* keep their values. Session settings are the exception: they are
added after any `options` the DSN (or PGOPTIONS) gives, so the user's other
settings stay and the role's own win, because the role's code relies on them.

Whether to autocommit and which row factory to use stay each caller's choice.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from typing import Any, overload

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from psycopg.rows import AsyncRowFactory, Row, RowFactory, TupleRow
from psycopg_pool import AsyncConnectionPool, ConnectionPool

from pgjobs import _names

__all__ = [
    "APP",
    "CLI",
    "CONNECT_TIMEOUT",
    "DASHBOARD",
    "KEEPALIVES_COUNT",
    "KEEPALIVES_IDLE",
    "KEEPALIVES_INTERVAL",
    "LEADER",
    "LISTENER",
    "MIGRATE",
    "WORKER",
    "Role",
    "async_pool",
    "connect",
    "connect_async",
    "conninfo_params",
    "pool",
]

#: Seconds a connection attempt may take, unless the DSN says otherwise.
CONNECT_TIMEOUT = 10
#: Seconds of silence on a connection before the first keepalive probe ...
KEEPALIVES_IDLE = 5
#: ... seconds between unanswered probes ...
KEEPALIVES_INTERVAL = 2
#: ... and how many unanswered probes mean the server is gone.
KEEPALIVES_COUNT = 3

# The libpq environment variables that stand for a connection parameter: a
# value there is the user's explicit choice, as one in the DSN is.
_ENVIRONMENT = {"connect_timeout": "PGCONNECT_TIMEOUT", "options": "PGOPTIONS"}


@dataclasses.dataclass(frozen=True)
class Role:
    """What a connection is for: the name it shows and the session settings it starts with.

    Attributes:
        name: the application_name operators see in pg_stat_activity.
        settings: (name, value) pairs of server settings every connection of
            this role starts with.
        tag_pid: append " pid=N" (this process's id) to the name, so each
            connection can be traced to its worker process.
    """

    name: str
    settings: tuple[tuple[str, str], ...] = ()
    tag_pid: bool = False

    def with_settings(self, **settings: object) -> Role:
        """This role with some settings added or given other values.

        Returns:
            A new Role; settings already present keep their place.
        """
        merged = dict(self.settings)
        merged.update((name, str(value)) for name, value in settings.items())
        return dataclasses.replace(self, settings=tuple(merged.items()))

    def application_name(self, pid: int) -> str:
        """The application_name of this role's connections in process `pid`."""
        return _names.with_pid(self.name, pid) if self.tag_pid else self.name


#: A worker's pool: its claims, outcomes, heartbeats and the leader's duties.
WORKER = Role(_names.APP_NAME_WORKER, tag_pid=True)
#: The connection that holds the leader lock; the dashboard reads its pid.
LEADER = Role(_names.APP_NAME_LEADER, tag_pid=True)
#: A worker's LISTEN connection.
LISTENER = Role(_names.APP_NAME_LISTENER, tag_pid=True)
#: The dashboard's pool. A slow query answers 503 instead of piling up
#: (milliseconds; `web.Database` passes its own value).
DASHBOARD = Role(_names.APP_NAME_DASHBOARD, (("statement_timeout", "5000"),))
#: An App's pools and its reachability check, in the application's processes.
APP = Role(_names.APP_NAME_APP)
#: The command-line tools.
CLI = Role(_names.APP_NAME_CLI)
#: `pgjobs migrate`.
MIGRATE = Role(_names.APP_NAME_MIGRATE)


def conninfo_params(
    dsn: str,
    role: Role,
    *,
    pid: int,
    environ: Mapping[str, str],
    connect_timeout: int = CONNECT_TIMEOUT,
    pooled: bool = False,
) -> dict[str, str | int]:
    """The connection parameters to add to `dsn` for a connection of `role`.

    Pure: the process id and the environment are arguments. Parameters the
    DSN (or its libpq environment variable) already sets are left out, so the
    user's values win; see the module's docstring.

    Args:
        dsn: the user's DSN (URL or key=value).
        role: what the connection is for.
        pid: the process id to tag the application name with.
        environ: the environment libpq reads its PG* defaults from.
        connect_timeout: seconds, unless the DSN or PGCONNECT_TIMEOUT says otherwise.
        pooled: the DSN goes through a transaction pooler: the role's session
            settings are left out (see the module's docstring).

    Returns:
        Keyword arguments for psycopg's connect.
    """
    given = conninfo_to_dict(dsn)

    def user_sets(param: str) -> bool:
        env = _ENVIRONMENT.get(param)
        return bool(given.get(param)) or (env is not None and bool(environ.get(env)))

    # libpq uses the fallback only when neither the DSN nor PGAPPNAME names
    # the application, which is the precedence wanted here.
    params: dict[str, str | int] = {"fallback_application_name": role.application_name(pid)}
    defaults: dict[str, int] = {
        "connect_timeout": connect_timeout,
        "keepalives": 1,
        "keepalives_idle": KEEPALIVES_IDLE,
        "keepalives_interval": KEEPALIVES_INTERVAL,
        "keepalives_count": KEEPALIVES_COUNT,
    }
    params.update((param, value) for param, value in defaults.items() if not user_sets(param))
    options = "" if pooled else _session_options(role)
    if options:
        # Given `options`, libpq ignores the DSN's and PGOPTIONS: keep them in front.
        users = given.get("options") or environ.get("PGOPTIONS")
        params["options"] = f"{users} {options}" if users else options
    return params


def _session_options(role: Role) -> str:
    """The role's session settings as a startup `options` string ("-c name=value ...").

    A role without settings sends no `options` at all, which also keeps its
    connections acceptable to a pooler that refuses that parameter.
    """
    return " ".join(f"-c {name}={_escape(value)}" for name, value in role.settings)


def _escape(value: str) -> str:
    # The server splits `options` at spaces, except those behind a backslash.
    return value.replace("\\", "\\\\").replace(" ", "\\ ")


def _params(dsn: str, role: Role, connect_timeout: int, pooled: bool) -> dict[str, str | int]:
    return conninfo_params(
        dsn,
        role,
        pid=os.getpid(),
        environ=os.environ,
        connect_timeout=connect_timeout,
        pooled=pooled,
    )


def _never_prepare(pooled: bool) -> dict[str, Any]:
    # prepare_threshold None: psycopg never prepares, whatever `prepare` says
    # per statement. Otherwise psycopg's own default.
    return {"prepare_threshold": None} if pooled else {}


@overload
def connect(
    dsn: str,
    role: Role,
    *,
    autocommit: bool = ...,
    connect_timeout: int = ...,
    pooled: bool = ...,
) -> psycopg.Connection[TupleRow]: ...
@overload
def connect(
    dsn: str,
    role: Role,
    *,
    row_factory: RowFactory[Row],
    autocommit: bool = ...,
    connect_timeout: int = ...,
    pooled: bool = ...,
) -> psycopg.Connection[Row]: ...
def connect(
    dsn: str,
    role: Role,
    *,
    row_factory: RowFactory[Any] | None = None,
    autocommit: bool = False,
    connect_timeout: int = CONNECT_TIMEOUT,
    pooled: bool = False,
) -> psycopg.Connection[Any]:
    """A new connection for `role`.

    Args:
        dsn: where to connect.
        role: what the connection is for.
        row_factory: how rows come back (tuples unless given).
        autocommit: whether each statement is its own transaction.
        connect_timeout: seconds, unless the DSN says otherwise.
        pooled: `dsn` is a transaction pooler (see the module's docstring).

    Returns:
        The open connection; the caller closes it.

    Raises:
        psycopg.OperationalError: the server cannot be reached or refused the connection.
    """
    conninfo = make_conninfo(dsn, **_params(dsn, role, connect_timeout, pooled))
    kwargs = _never_prepare(pooled)
    if row_factory is None:
        return psycopg.Connection.connect(conninfo, autocommit=autocommit, **kwargs)
    return psycopg.Connection.connect(
        conninfo, autocommit=autocommit, row_factory=row_factory, **kwargs
    )


@overload
async def connect_async(
    dsn: str,
    role: Role,
    *,
    autocommit: bool = ...,
    connect_timeout: int = ...,
    pooled: bool = ...,
) -> psycopg.AsyncConnection[TupleRow]: ...
@overload
async def connect_async(
    dsn: str,
    role: Role,
    *,
    row_factory: AsyncRowFactory[Row],
    autocommit: bool = ...,
    connect_timeout: int = ...,
    pooled: bool = ...,
) -> psycopg.AsyncConnection[Row]: ...
async def connect_async(
    dsn: str,
    role: Role,
    *,
    row_factory: AsyncRowFactory[Any] | None = None,
    autocommit: bool = False,
    connect_timeout: int = CONNECT_TIMEOUT,
    pooled: bool = False,
) -> psycopg.AsyncConnection[Any]:
    """Async twin of `connect`.

    Raises:
        psycopg.OperationalError: the server cannot be reached or refused the connection.
    """
    conninfo = make_conninfo(dsn, **_params(dsn, role, connect_timeout, pooled))
    kwargs = _never_prepare(pooled)
    if row_factory is None:
        return await psycopg.AsyncConnection.connect(conninfo, autocommit=autocommit, **kwargs)
    return await psycopg.AsyncConnection.connect(
        conninfo, autocommit=autocommit, row_factory=row_factory, **kwargs
    )


def _pool_kwargs(
    dsn: str,
    role: Role,
    row_factory: object,
    autocommit: bool,
    connect_timeout: int,
    pooled: bool,
) -> dict[str, Any]:
    kwargs: dict[str, Any] = {
        **_params(dsn, role, connect_timeout, pooled),
        **_never_prepare(pooled),
        "autocommit": autocommit,
    }
    if row_factory is not None:
        kwargs["row_factory"] = row_factory
    return kwargs


def pool(
    dsn: str,
    role: Role,
    *,
    min_size: int,
    max_size: int,
    timeout: float = 30.0,
    name: str | None = None,
    row_factory: RowFactory[Any] | None = None,
    autocommit: bool = False,
    connect_timeout: int = CONNECT_TIMEOUT,
    pooled: bool = False,
    max_idle: float = 600.0,
) -> ConnectionPool[psycopg.Connection[Any]]:
    """A connection pool for `role`, not yet open: the caller opens it.

    Args:
        dsn: where to connect; the pool's `conninfo` is this DSN as given.
        role: what the pool's connections are for.
        min_size: connections the pool keeps open.
        max_size: the most connections it opens.
        timeout: seconds a caller waits for a connection.
        name: the pool's name in psycopg's logs.
        row_factory: how rows come back (tuples unless given).
        autocommit: whether each statement is its own transaction.
        connect_timeout: seconds per connection attempt, unless the DSN says otherwise.
        pooled: `dsn` is a transaction pooler (see the module's docstring).
        max_idle: seconds an unused connection above `min_size` stays open.

    Returns:
        The closed pool.
    """
    return ConnectionPool(
        dsn,
        kwargs=_pool_kwargs(dsn, role, row_factory, autocommit, connect_timeout, pooled),
        min_size=min_size,
        max_size=max_size,
        max_idle=max_idle,
        open=False,
        timeout=timeout,
        name=name,
    )


def async_pool(
    dsn: str,
    role: Role,
    *,
    min_size: int,
    max_size: int,
    timeout: float = 30.0,
    name: str | None = None,
    row_factory: AsyncRowFactory[Any] | None = None,
    autocommit: bool = False,
    connect_timeout: int = CONNECT_TIMEOUT,
    pooled: bool = False,
    max_idle: float = 600.0,
) -> AsyncConnectionPool[psycopg.AsyncConnection[Any]]:
    """Async twin of `pool`; not yet open, as an async pool opens inside a running loop."""
    return AsyncConnectionPool(
        dsn,
        kwargs=_pool_kwargs(dsn, role, row_factory, autocommit, connect_timeout, pooled),
        min_size=min_size,
        max_size=max_size,
        max_idle=max_idle,
        open=False,
        timeout=timeout,
        name=name,
    )
