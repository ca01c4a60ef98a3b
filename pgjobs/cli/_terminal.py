"""What every command of `python -m pgjobs` shares: the --dsn option and argument types."""

from __future__ import annotations

import argparse
from collections.abc import Callable


def add_dsn(parser: argparse.ArgumentParser) -> None:
    """The --dsn option every database command takes."""
    parser.add_argument(
        "--dsn",
        help="PostgreSQL address (default: $PGJOBS_DSN, then $DATABASE_URL)",
    )


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
