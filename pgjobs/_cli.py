"""The `python -m pgjobs` command line: worker, migrate, and the operator commands."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import threading
from collections.abc import Callable, Sequence

import psycopg

from pgjobs import _dsn, _log, _migrate
from pgjobs.errors import PgjobsError

Handler = Callable[[argparse.Namespace], int]


def _positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
    return value


def add_dsn(parser: argparse.ArgumentParser) -> None:
    """The --dsn option every database command takes."""
    parser.add_argument(
        "--dsn",
        help="PostgreSQL address (default: $PGJOBS_DSN, then $DATABASE_URL)",
    )


def _worker_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("worker", help="run jobs", description="Claim and run jobs of an App.")
    p.add_argument("app", help="the App to run, as module:attribute (e.g. myapp.jobs:app)")
    add_dsn(p)
    p.add_argument(
        "--queues",
        "-q",
        default=None,
        help="comma-separated queues (default: every queue the App's tasks use)",
    )
    p.add_argument("--concurrency", "-c", type=int, default=10, help="jobs at once (default 10)")
    p.add_argument(
        "--poll-interval",
        type=_positive_float,
        default=1.0,
        help="seconds between polls when no notification comes (default 1)",
    )
    p.add_argument(
        "--no-listen",
        action="store_true",
        help="poll only, no LISTEN (for transaction-pooling PgBouncer)",
    )
    p.add_argument(
        "--grace-period",
        type=float,
        default=30.0,
        help="seconds running jobs get to finish after SIGTERM (default 30)",
    )
    p.add_argument("--heartbeat-interval", type=_positive_float, default=5.0)
    p.add_argument(
        "--stale-after",
        type=_positive_float,
        default=30.0,
        help="seconds without heartbeat before a worker is dead (default 30)",
    )
    p.add_argument("--rescue-interval", type=_positive_float, default=10.0)
    # -- leader and cron --
    p.add_argument(
        "--leader-interval",
        type=_positive_float,
        default=5.0,
        help="seconds between attempts to become leader (default 5)",
    )
    p.add_argument(
        "--leader-dsn",
        default=None,
        help="direct or session-pooled address for the leader lock "
        "(when --dsn goes through a transaction-pooling PgBouncer)",
    )
    p.add_argument(
        "--cron-grace",
        type=_positive_float,
        default=10.0,
        help="seconds late a cron tick may still fire without backfill (default 10)",
    )
    p.set_defaults(handler=_run_worker)


def _run_worker(args: argparse.Namespace) -> int:
    from pgjobs._loader import load_app
    from pgjobs.worker import Worker, WorkerConfig

    app = load_app(args.app)
    if args.dsn:
        app.dsn = args.dsn
    if args.queues:
        queues = tuple(q.strip() for q in args.queues.split(",") if q.strip())
    else:
        queues = tuple(sorted({t.defaults.queue for t in app.tasks.values()} | {"default"}))
    config = WorkerConfig(
        queues=queues,
        concurrency=args.concurrency,
        listen=not args.no_listen,
        poll_interval=args.poll_interval,
        grace_period=args.grace_period,
        heartbeat_interval=args.heartbeat_interval,
        stale_after=args.stale_after,
        rescue_interval=args.rescue_interval,
        leader_interval=args.leader_interval,
        leader_dsn=_dsn.normalise(args.leader_dsn) if args.leader_dsn else None,
        cron_grace=args.cron_grace,
    )
    worker = Worker(app, config)
    code = asyncio.run(worker.run(handle_signals=True))
    stuck = [t for t in threading.enumerate() if t.name.startswith("pgjobs-job")]
    if stuck:
        # A sync handler that ignored its timeout is still running in a thread.
        # Its job has been released; do not let it hold the process open.
        sys.stderr.flush()
        os._exit(code)
    return code


def _migrate_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "migrate",
        help="create or upgrade the pgjobs schema",
        description="Create or upgrade the pgjobs schema with Alembic.",
    )
    add_dsn(p)
    p.add_argument(
        "--sql", action="store_true", help="print the DDL for a DBA instead of applying it"
    )
    p.set_defaults(handler=_run_migrate)


def _run_migrate(args: argparse.Namespace) -> int:
    if args.sql:
        sys.stdout.write(_migrate.offline_sql())
        return 0
    dsn = _dsn.require(args.dsn)
    try:
        before, after = _migrate.upgrade(dsn)
    except psycopg.errors.InsufficientPrivilege as exc:
        raise PgjobsError(
            f"the database user may not create the pgjobs schema ({exc.diag.message_primary}). "
            "Run migrate as the database owner, or have a DBA apply `pgjobs migrate --sql`."
        ) from None
    if before == after:
        print(f"pgjobs schema is up to date (revision {after}) at {_dsn.redact(dsn)}")
    else:
        print(f"pgjobs schema migrated from {before or 'nothing'} to {after} at {_dsn.redact(dsn)}")
    return 0


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
    _worker_parser(sub)
    _migrate_parser(sub)
    for register in _extra_commands():
        register(sub)
    return parser


def _extra_commands() -> list[
    Callable[[argparse._SubParsersAction[argparse.ArgumentParser]], None]
]:
    # Each operator command lives in its own module and adds its own parser.
    registrars = []
    for module_name in (
        "pgjobs._cli_admin",  # enqueue, jobs, stats
        "pgjobs._cli_cron",  # cron
        "pgjobs._demo",  # demo
        "pgjobs._bench",  # bench
        "pgjobs.web._cli",  # dashboard
    ):
        try:
            module = __import__(module_name, fromlist=["add_parsers"])
        except ModuleNotFoundError as exc:
            if not exc.name or not module_name.startswith(exc.name):
                raise  # a real import error inside an existing command module
            continue
        registrars.append(module.add_parsers)
    return registrars


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
