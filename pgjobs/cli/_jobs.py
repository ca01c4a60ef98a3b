"""The operator commands of `python -m pgjobs`: enqueue, jobs list/show/retry/cancel, stats."""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import getpass
import sys
from typing import TYPE_CHECKING, Any

from pgjobs import _admin, _table
from pgjobs._job import Job, Priority
from pgjobs.cli._terminal import add_dsn, add_json, connection, pretty, print_json
from pgjobs.errors import (
    ConfigurationError,
    DuplicateJobError,
    PgjobsError,
)

if TYPE_CHECKING:
    _Subparsers = argparse._SubParsersAction[argparse.ArgumentParser]


def add_parsers(sub: _Subparsers) -> None:
    """Register `enqueue`, `jobs` and `stats` on the top-level subparsers."""
    _enqueue_parser(sub)
    _jobs_parser(sub)
    _stats_parser(sub)


# -- arguments -------------------------------------------------------------


def _priority(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return Priority[text.upper()]
    except KeyError:
        names = ", ".join(p.name.lower() for p in Priority)
        raise argparse.ArgumentTypeError(f"use 0 to 4 or one of {names}; got {text!r}") from None


# -- enqueue ---------------------------------------------------------------


def _enqueue_parser(sub: _Subparsers) -> None:
    p = sub.add_parser(
        "enqueue",
        help="queue a job by task name",
        description="Queue a job by task name. Without --app any name is accepted, as by the "
        "pgjobs.enqueue() SQL function; with --app the name and arguments are checked "
        "against the App's tasks, and a short name (the last part of one task's name) "
        "is enough.",
    )
    p.add_argument(
        "task",
        help="the task name, as stored in jobs.task; with --app, a short name that ends "
        "exactly one registered name will do (send_welcome for myapp.jobs.send_welcome)",
    )
    p.add_argument(
        "--args",
        default="{}",
        metavar="JSON",
        help="""the arguments as a JSON object, e.g. '{"user_id": 42}' (default {})""",
    )
    p.add_argument("--queue", help="the queue (default: the task's, else 'default')")
    p.add_argument(
        "--priority",
        type=_priority,
        help="0 (critical) to 4 (bulk), or a name: critical, high, normal, low, bulk",
    )
    p.add_argument(
        "--delay", type=float, metavar="SECONDS", help="seconds to wait before the job may run"
    )
    p.add_argument("--fingerprint", help="dedup key: at most one active job holds it")
    p.add_argument(
        "--skip-duplicate",
        action="store_true",
        help="when an active job holds the fingerprint, enqueue nothing and exit 0",
    )
    p.add_argument(
        "--max-attempts",
        type=int,
        metavar="N",
        help="attempts before the job is failed (default: the task's, else 3)",
    )
    p.add_argument(
        "--app",
        metavar="MODULE:ATTR",
        help="check the task name and arguments against this App, and accept short names",
    )
    add_dsn(p)
    add_json(p)
    p.set_defaults(handler=_run_enqueue)


def _run_enqueue(args: argparse.Namespace) -> int:
    # Everything is checked before connecting: bad input writes nothing.
    payload = _admin.parse_args_json(args.args)
    app = None
    task = args.task
    if args.app:
        from pgjobs._app import resolve_task_name
        from pgjobs._loader import load_app

        app = load_app(args.app)
        # `send_welcome` for `myapp.jobs.send_welcome`; stored under the full name.
        task = resolve_task_name(app.tasks, task)
    spec = _admin.job_spec(
        task,
        payload,
        app=app,
        queue=args.queue,
        priority=args.priority,
        delay=args.delay,
        max_attempts=args.max_attempts,
        fingerprint=args.fingerprint,
        on_conflict="skip" if args.skip_duplicate else None,
    )
    with connection(args.dsn) as conn:
        try:
            job_id = _admin.enqueue(conn, spec)
        except DuplicateJobError as exc:
            raise PgjobsError(
                f"an active job (id {exc.existing_id}) already has fingerprint "
                f"{exc.fingerprint!r}; nothing was enqueued. Pass --skip-duplicate to "
                "accept that quietly (exit code 0)."
            ) from None
    if args.json:
        print_json({"id": job_id, "task": spec.task, "queue": spec.options.queue})
    elif job_id is None:
        print(f"not enqueued: an active job already has fingerprint {spec.options.fingerprint!r}")
    else:
        print(f"enqueued job {job_id} (task {spec.task!r} on queue {spec.options.queue!r})")
    return 0


# -- jobs ------------------------------------------------------------------


def _jobs_parser(sub: _Subparsers) -> None:
    jobs = sub.add_parser(
        "jobs", help="list, show, retry or cancel jobs", description="Inspect and steer jobs."
    )
    actions = jobs.add_subparsers(dest="action", required=True, metavar="ACTION")

    p = actions.add_parser(
        "list",
        help="list jobs, newest first",
        description="List jobs, newest first, one page at a time.",
    )
    p.add_argument(
        "--status",
        choices=_admin.STATES,
        help="a status; 'queued' includes the scheduled and retrying jobs",
    )
    p.add_argument("--queue", help="only this queue")
    p.add_argument("--task", help="only this task")
    p.add_argument("--limit", type=int, default=50, help="jobs per page (default 50)")
    p.add_argument(
        "--before",
        type=int,
        metavar="ID",
        help="only jobs older than this id: the next page after a listing",
    )
    add_dsn(p)
    add_json(p)
    p.set_defaults(handler=_run_list)

    p = actions.add_parser(
        "show",
        help="every field of one job",
        description="Show every field of one job, with each error's traceback.",
    )
    p.add_argument("id", type=int, help="the job id")
    add_dsn(p)
    add_json(p)
    p.set_defaults(handler=_run_show)

    p = actions.add_parser(
        "retry",
        help="run failed or cancelled jobs again",
        description="Put one job (by id) or every matching job (by filters) back in line "
        "to run now, with a fresh budget of attempts. Errors are kept.",
    )
    p.add_argument("id", type=int, nargs="?", help="the job id; omit it to use filters")
    p.add_argument(
        "--status", choices=_admin.RETRYABLE, help="retry jobs in this status (default failed)"
    )
    p.add_argument("--queue", help="only jobs of this queue")
    p.add_argument("--task", help="only jobs of this task")
    add_dsn(p)
    add_json(p)
    p.set_defaults(handler=_run_retry)

    p = actions.add_parser(
        "cancel",
        help="cancel queued or running jobs",
        description="Cancel one job (by id), or every job of a queue and/or task. A queued "
        "job is cancelled at once; a running one is asked to stop (its worker cancels an "
        "async handler, a sync handler stops where it checks current_job().cancelled) and "
        "ends cancelled.",
    )
    p.add_argument("id", type=int, nargs="?", help="the job id; omit it to use filters")
    p.add_argument("--queue", help="cancel the queued and running jobs of this queue")
    p.add_argument("--task", help="cancel the queued and running jobs of this task")
    add_dsn(p)
    add_json(p)
    p.set_defaults(handler=_run_cancel)


_LIST_HEADERS = (
    "id",
    "queue",
    "task",
    "status",
    "priority",
    "attempts",
    "run_at",
    "created_at",
    "progress",
    "last_error",
)


def _run_list(args: argparse.Namespace) -> int:
    where = _admin.JobFilter(
        status=args.status,
        queue=args.queue,
        task=args.task,
        limit=args.limit,
        before_id=args.before,
    )
    with connection(args.dsn) as conn:
        jobs = _admin.list_jobs(conn, where)
    if args.json:
        print_json([dataclasses.asdict(j) for j in jobs])
        return 0
    if not jobs:
        print("no jobs match")
        return 0
    rows = [
        (
            j.id,
            j.queue,
            j.task,
            j.state,
            j.priority,
            f"{j.attempts}/{j.max_attempts}",
            _table.timestamp(j.run_at),
            _table.timestamp(j.created_at),
            _progress(j.progress),
            j.last_error_type,
        )
        for j in jobs
    ]
    print(_table.table(_LIST_HEADERS, rows))
    if len(jobs) == where.limit:
        print(
            f"(the newest {where.limit} shown; next page: --before {jobs[-1].id})", file=sys.stderr
        )
    return 0


def _run_show(args: argparse.Namespace) -> int:
    with connection(args.dsn) as conn:
        detail = _admin.get_job(conn, args.id)
    job = detail.job
    if args.json:
        print_json({**dataclasses.asdict(job), "state": detail.state})
        return 0
    state = detail.state if detail.state == job.status else f"{detail.state} (status {job.status})"
    print(
        _table.fields(
            [
                ("id", job.id),
                ("task", job.task),
                ("queue", job.queue),
                ("status", state),
                ("priority", job.priority),
                ("attempts", f"{job.attempts}/{job.max_attempts}"),
                ("run_at", _table.timestamp(job.run_at)),
                ("created_at", _table.timestamp(job.created_at)),
                ("started_at", _table.timestamp(job.started_at)),
                ("finished_at", _table.timestamp(job.finished_at)),
                ("worker_id", job.worker_id),
                ("fingerprint", job.fingerprint),
                ("args", pretty(job.args)),
                ("meta", pretty(job.meta)),
                ("result", pretty(job.result)),
                ("progress", _progress(job.progress)),
                ("snoozes", job.snoozes),
                ("cancel", _cancel_request(job)),
                ("errors", len(job.errors) or "none"),
            ]
        )
    )
    for number, error in enumerate(job.errors, start=1):
        print()
        print(f"error {number}: attempt {error.get('attempt', '?')} at {_error_time(error)}")
        message = f"{error.get('type', '?')}: {error.get('message', '')}"
        for line in message.rstrip().splitlines():
            print(f"  {line}")
        for line in str(error.get("traceback") or "").rstrip().splitlines():
            print(f"    {line}")
    return 0


def _error_time(error: dict[str, Any]) -> str:
    """The `at` of an error entry (a JSON timestamp string) in the table's format."""
    raw = error.get("at")
    try:
        return _table.timestamp(dt.datetime.fromisoformat(str(raw)))
    except ValueError:
        return str(raw or "?")


def _single_or_bulk(args: argparse.Namespace, *filters: str) -> bool:
    """True for a bulk action; raise when the id and filters are mixed or both missing."""
    given = [f for f in filters if getattr(args, f) is not None]
    if args.id is not None and given:
        flags = ", ".join(f"--{f}" for f in given)
        raise ConfigurationError(f"give a job id or filters ({flags}), not both")
    if args.id is None and not given:
        flags = ", ".join(f"--{f}" for f in filters)
        raise ConfigurationError(
            f"give a job id, or filters ({flags}) to {args.action} many jobs at once"
        )
    return args.id is None


def _report_bulk(args: argparse.Namespace, verb: str, result: _admin.BulkResult) -> None:
    if args.json:
        print_json({verb: result.total, "queues": result.per_queue})
        return
    plural = "job" if result.total == 1 else "jobs"
    where = ", ".join(f"{q}: {n}" for q, n in result.per_queue.items())
    print(f"{verb} {result.total} {plural}" + (f" ({where})" if where else ""))


def _run_retry(args: argparse.Namespace) -> int:
    bulk = _single_or_bulk(args, "status", "queue", "task")
    with connection(args.dsn) as conn:
        if bulk:
            result = _admin.retry_jobs(
                conn, status=args.status or "failed", queue=args.queue, task=args.task
            )
            _report_bulk(args, "retried", result)
            return 0
        _admin.retry_job(conn, args.id)
    if args.json:
        print_json({"id": args.id, "status": "queued"})
    else:
        print(f"job {args.id} is queued to run again")
    return 0


def _run_cancel(args: argparse.Namespace) -> int:
    bulk = _single_or_bulk(args, "queue", "task")
    by = _whoami()
    with connection(args.dsn) as conn:
        if bulk:
            cancelled = _admin.cancel_jobs(conn, queue=args.queue, task=args.task, by=by)
            _report_bulk(args, "cancelled", cancelled)
            return 0
        _admin.cancel_job(conn, args.id, by)
        status = _admin.get_job(conn, args.id).job.status.value
    if args.json:
        print_json({"id": args.id, "status": status})
    elif status == "running":
        print(f"job {args.id} is running: its worker was asked to stop it (it ends cancelled)")
    else:
        print(f"job {args.id} cancelled")
    return 0


def _progress(report: dict[str, Any] | None) -> str | None:
    """A progress report as one line: "40/100 chunk 40 of 100", or None."""
    if not report:
        return None
    if not isinstance(report, dict):  # written by hand, in SQL
        return str(report)
    done, total, message = report.get("done"), report.get("total"), report.get("message")
    amount = f"{done}/{total}" if total is not None else f"{done}"
    return f"{amount} {message}" if message else amount


def _cancel_request(job: Job) -> str | None:
    """Who asked a job to stop, and when: "asked by cli:ana at 2026-...", or None."""
    if job.cancel_requested_at is None:
        return None
    by = f" by {job.cancelled_by}" if job.cancelled_by else ""
    return f"asked{by} at {_table.timestamp(job.cancel_requested_at)}"


def _whoami() -> str:
    """Who runs this command, for `cancelled_by` ("cli:NAME")."""
    try:
        return f"cli:{getpass.getuser()}"
    except (OSError, KeyError):  # no user name in this environment
        return "cli"


# -- stats -----------------------------------------------------------------


def _stats_parser(sub: _Subparsers) -> None:
    p = sub.add_parser(
        "stats",
        help="job counts per queue and state, and live workers",
        description="Job counts per queue and state, the age of the oldest "
        "job waiting to run, and the number of live workers.",
    )
    p.add_argument(
        "--stale-after",
        type=float,
        default=30.0,
        metavar="SECONDS",
        help="a worker silent this long is not counted as live (default 30)",
    )
    add_dsn(p)
    add_json(p)
    p.set_defaults(handler=_run_stats)


_STATS_HEADERS = (
    "queue",
    "available",
    "scheduled",
    "running",
    "succeeded",
    "failed",
    "cancelled",
    "oldest_waiting",
    "paused",
)


def _run_stats(args: argparse.Namespace) -> int:
    with connection(args.dsn) as conn:
        stats = _admin.stats(conn, stale_after=args.stale_after)
    if args.json:
        print_json(dataclasses.asdict(stats))
        return 0
    if stats.queues:
        rows = [
            (
                q.queue,
                q.available,
                q.scheduled,
                q.running,
                q.succeeded,
                q.failed,
                q.cancelled,
                _table.duration(q.oldest_available_seconds),
                "yes" if q.paused else "",
            )
            for q in stats.queues
        ]
        print(_table.table(_STATS_HEADERS, rows))
    else:
        print("no jobs")
    print(f"live workers: {stats.live_workers}")
    return 0
