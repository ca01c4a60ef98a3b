"""The `python -m pgjobs` command line: the parser of every command, and `main`."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence

from pgjobs import _log
from pgjobs.cli import _bench, _cron, _dashboard, _demo, _doctor, _jobs, _migrate, _worker
from pgjobs.errors import PgjobsError

Handler = Callable[[argparse.Namespace], int]


def build_parser() -> argparse.ArgumentParser:
    """The full command-line parser."""
    parser = argparse.ArgumentParser(
        prog="pgjobs", description="pgjobs: background jobs in PostgreSQL."
    )
    parser.add_argument(
        "--log-level",
        default=os.environ.get("PGJOBS_LOG_LEVEL", "info"),
        choices=["debug", "info", "warning", "error"],
    )
    parser.add_argument(
        "--log-format",
        default=os.environ.get("PGJOBS_LOG_FORMAT", "console"),
        choices=["console", "json"],
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in (_worker, _migrate, _jobs, _cron, _doctor, _dashboard, _demo, _bench):
        command.add_parsers(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; errors pgjobs anticipates print one line, not a traceback."""
    parser = build_parser()
    args = parser.parse_args(argv)
    _log.configure(args.log_level, args.log_format)
    handler: Handler = args.handler
    try:
        return handler(args)
    except PgjobsError as exc:
        print(f"pgjobs: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
