"""`python -m pgjobs demo`: its options; the demo itself is pgjobs.demo."""

from __future__ import annotations

import argparse
from pathlib import Path

from pgjobs.demo import _run as demo


def add_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register the `demo` command."""
    p = sub.add_parser(
        "demo",
        help="run a worker on sample jobs (starts an embedded PostgreSQL if no DSN is set)",
        description="Enqueue a few hundred sample jobs, run them with an in-process worker, "
        "show progress and a summary, and print the psql line to inspect them. With no DSN "
        "configured it starts a private PostgreSQL (pip install 'pgjobs[embedded]').",
    )
    p.add_argument("--dsn", help="PostgreSQL address (default: $PGJOBS_DSN, then $DATABASE_URL)")
    p.add_argument("--jobs", type=int, default=300, help="how many sample jobs (default 300)")
    p.add_argument("--concurrency", type=int, default=10, help="the worker's slots (default 10)")
    p.add_argument(
        "--embedded",
        action="store_true",
        help="use an embedded PostgreSQL even when a DSN is configured",
    )
    p.add_argument(
        "--data-dir",
        type=Path,
        help="keep the embedded PostgreSQL's data here (implies --embedded; "
        "default: a temporary directory, deleted at exit)",
    )
    p.add_argument(
        "--keep-running",
        action="store_true",
        help="keep the embedded PostgreSQL running until Ctrl-C (embedded only)",
    )
    p.add_argument(
        "--dashboard-port",
        type=int,
        default=8080,
        help="serve the dashboard here during the demo, on loopback (default 8080; "
        "a free port if taken; needs pip install 'pgjobs[web]')",
    )
    p.add_argument("--no-dashboard", action="store_true", help="do not serve the dashboard")
    p.add_argument(
        "--show-logs",
        action="store_true",
        help="show the worker's logs (at --log-level) instead of hiding them",
    )
    p.set_defaults(handler=demo.run)
