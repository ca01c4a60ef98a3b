"""`python -m pgjobs migrate`: create or upgrade the pgjobs schema, or print its DDL."""

from __future__ import annotations

import argparse
import sys

import psycopg

from pgjobs import _dsn, _migrate
from pgjobs.cli._terminal import add_dsn
from pgjobs.errors import PgjobsError


def add_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register the `migrate` command."""
    p = sub.add_parser(
        "migrate",
        help="create or upgrade the pgjobs schema",
        description=(
            "Create or upgrade the pgjobs schema with Alembic. Before changing a schema in "
            "use, it reads the running workers from pgjobs.workers, and refuses (exit 2) a "
            "revision that does not work with the code of one of them, unless --force."
        ),
    )
    add_dsn(p)
    p.add_argument(
        "--sql", action="store_true", help="print the DDL for a DBA instead of applying it"
    )
    p.add_argument(
        "--force",
        action="store_true",
        help="migrate even if running workers' code does not work with the new revision "
        "(they are named in a warning, and fail until replaced)",
    )
    p.set_defaults(handler=_run_migrate)


def _run_migrate(args: argparse.Namespace) -> int:
    if args.sql:
        sys.stdout.write(_migrate.offline_sql())
        return 0
    dsn = _dsn.require(args.dsn)
    try:
        before, after = _migrate.upgrade(dsn, force=args.force, warn=_warn)
    except psycopg.errors.InsufficientPrivilege as exc:
        raise PgjobsError(
            f"the database user may not create the pgjobs schema ({exc.diag.message_primary}). "
            "Run migrate as the database owner, or have a DBA apply `pgjobs migrate --sql`."
        ) from None
    if before == after:
        print(f"pgjobs schema is up to date (revision {after}) at {_dsn.redact(dsn)}")
    else:
        print(f"pgjobs schema migrated from {before or 'nothing'} to {after} at {_dsn.redact(dsn)}")
    if int(after) >= int(_migrate.HISTORY_REVISION):
        moved = _migrate.move_finished(dsn, progress=_report_moved)
        if moved:
            print(f"moved {moved} finished jobs from pgjobs.jobs_live into pgjobs.job_history")
    return 0


def _warn(message: str) -> None:
    print(f"pgjobs: warning: {message}", file=sys.stderr, flush=True)


def _report_moved(total: int) -> None:
    if total % 100_000 == 0:
        print(f"  {total} finished jobs moved into pgjobs.job_history so far", flush=True)
