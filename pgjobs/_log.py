"""Logging: the structlog logger pgjobs writes to, and the CLI's output setup."""

from __future__ import annotations

import logging
import sys
from typing import Any

import structlog

# Library code only asks for a logger; it never configures output. The CLI
# does, through `configure`. Event names are stable (job.started,
# job.succeeded, worker.started, ...); values go in key-value fields.


def get_logger(**initial: Any) -> Any:
    """The pgjobs logger, with optional bound fields.

    When the application has not configured structlog, its defaults would print
    every debug line (one per job) to stdout; pgjobs then logs info and above
    to stderr instead. A configured structlog is used as configured.
    """
    if structlog.is_configured():
        return structlog.get_logger("pgjobs", **initial)
    return structlog.wrap_logger(
        structlog.WriteLogger(sys.stderr),
        wrapper_class=structlog.make_filtering_bound_logger(logging.INFO),
        **initial,
    )


def configure(level: str = "info", fmt: str = "console") -> None:
    """Set up structlog output for the command line: console (for people) or json."""
    numeric = logging.getLevelNamesMapping().get(level.upper())
    if numeric is None:
        raise ValueError(f"unknown log level {level!r}; use debug, info, warning or error")
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if fmt == "json"
        else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info if fmt == "json" else structlog.dev.set_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        # One write per line, newline included: print() writes the line and
        # its newline apart, and with PYTHONUNBUFFERED (common in containers)
        # those are two write(2)s, between which the other processes of a
        # `--processes N` group sharing the stream slipped their own lines.
        logger_factory=structlog.WriteLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=True,
    )
