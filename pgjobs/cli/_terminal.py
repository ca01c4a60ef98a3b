"""What the commands of `python -m pgjobs` share: --dsn, its connection, --json, argument types.

Tables for people are `pgjobs._table`, which the demo uses too.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
from collections.abc import Callable, Iterator
from typing import Any

import psycopg

from pgjobs import _dsn
from pgjobs._connect import CLI, connect
from pgjobs.errors import DatabaseUnavailableError


def add_dsn(parser: argparse.ArgumentParser) -> None:
    """The --dsn option every database command takes."""
    parser.add_argument(
        "--dsn",
        help="PostgreSQL address (default: $PGJOBS_DSN, then $DATABASE_URL)",
    )


@contextlib.contextmanager
def connection(dsn_arg: str | None) -> Iterator[psycopg.Connection[Any]]:
    """An autocommit connection for one command: each command is one statement.

    Raises:
        ConfigurationError: no DSN given or configured.
        DatabaseUnavailableError: the server cannot be reached, or the connection was lost.
    """
    dsn = _dsn.require(dsn_arg)
    try:
        conn = connect(dsn, CLI, autocommit=True)
    except psycopg.Error as exc:
        raise DatabaseUnavailableError(_dsn.connect_error_message(dsn, exc)) from None
    with conn:
        try:
            yield conn
        except psycopg.OperationalError as exc:
            raise DatabaseUnavailableError(_dsn.connect_error_message(dsn, exc)) from None


def add_json(parser: argparse.ArgumentParser, help: str = "print JSON for scripts") -> None:
    """The --json option of a command that can print for scripts."""
    parser.add_argument("--json", action="store_true", help=help)


def _json_default(value: object) -> object:
    if isinstance(value, dt.datetime):
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def pretty(value: object) -> str:
    """`value` as indented JSON: timestamps in ISO 8601, intervals in seconds."""
    return json.dumps(value, indent=2, ensure_ascii=False, default=_json_default)


def print_json(value: object) -> None:
    """Print `value` as indented JSON (see `pretty`)."""
    print(pretty(value))


def positive_float(text: str) -> float:
    """An argparse type: a number greater than 0."""
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
    return value


def positive_int(text: str) -> int:
    """An argparse type: an integer of 1 or more."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def non_negative_int(text: str) -> int:
    """An argparse type: an integer of 0 or more."""
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected an integer of 0 or more, got {text!r}")
    return value


def csv_ints(text: str) -> list[int]:
    """An argparse type: comma-separated positive integers."""
    values = [positive_int(v.strip()) for v in text.split(",") if v.strip()]
    if not values:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated positive integers, got {text!r}"
        )
    return values


def csv_names(choices: tuple[str, ...]) -> Callable[[str], list[str]]:
    """An argparse type: comma-separated names from `choices`, or `all` for every one."""

    def parse(text: str) -> list[str]:
        names = [v.strip() for v in text.split(",") if v.strip()]
        if "all" in names:
            return list(choices)
        unknown = [n for n in names if n not in choices]
        if unknown or not names:
            raise argparse.ArgumentTypeError(
                f"unknown {', '.join(unknown) or 'empty list'}; choose from {', '.join(choices)}"
            )
        return names

    return parse
