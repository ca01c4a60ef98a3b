"""Finding and checking the database address (DSN)."""

from __future__ import annotations

import os
import re

import psycopg

from pgjobs.errors import ConfigurationError

ENV_VARS = ("PGJOBS_DSN", "DATABASE_URL")

_HOW_TO_SET = (
    "Set PGJOBS_DSN (or DATABASE_URL), pass --dsn, or App(dsn=...), "
    "for example postgresql://user:password@localhost:5432/mydb"
)


def resolve(dsn: str | None = None) -> str | None:
    """The DSN to use: the explicit one, else PGJOBS_DSN, else DATABASE_URL, else None."""
    if dsn:
        return normalise(dsn)
    for var in ENV_VARS:
        value = os.environ.get(var)
        if value:
            return normalise(value)
    return None


def require(dsn: str | None = None) -> str:
    """Like `resolve`, but a missing DSN is an error that says how to set one."""
    found = resolve(dsn)
    if found is None:
        raise ConfigurationError(f"no database configured. {_HOW_TO_SET}")
    return found


def normalise(dsn: str) -> str:
    """Accept SQLAlchemy-style URLs (postgresql+psycopg://) and check the syntax.

    Raises:
        ConfigurationError: the DSN cannot be parsed.
    """
    dsn = re.sub(r"^postgres(?:ql)?\+\w+://", "postgresql://", dsn.strip())
    try:
        psycopg.conninfo.conninfo_to_dict(dsn)
    except psycopg.ProgrammingError as exc:
        reason = str(exc).strip()  # libpq ends its message with a newline
        raise ConfigurationError(
            f"malformed DSN {redact(dsn)!r}: {reason}. {_HOW_TO_SET}"
        ) from None
    return dsn


def redact(dsn: str) -> str:
    """The DSN with any password replaced by ***, for messages and logs."""
    dsn = re.sub(r"(://[^:/@]*:)[^@]*@", r"\1***@", dsn)
    return re.sub(r"(password\s*=\s*)\S+", r"\1***", dsn)


def connect_error_message(dsn: str, exc: BaseException) -> str:
    """One line that says which server failed and how to point pgjobs elsewhere."""
    reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return f"cannot connect to PostgreSQL at {redact(dsn)!r}: {reason}. {_HOW_TO_SET}"
