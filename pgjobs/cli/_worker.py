"""`python -m pgjobs worker module:app`: claim and run an App's jobs."""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import sys
import threading

from pgjobs import _dsn
from pgjobs._app import App
from pgjobs._loader import load_app
from pgjobs.cli import _supervisor
from pgjobs.cli._terminal import add_dsn, positive_float
from pgjobs.errors import ConfigurationError
from pgjobs.worker import Worker, WorkerConfig
from pgjobs.worker._config import MIN_RETENTION, check_partition_interval

#: The settings a worker gets when no option says otherwise.
_DEFAULTS = WorkerConfig()

RETENTION_FORMS = (
    "a duration such as 7d, 12h, 30m, 90s or 3600 (seconds), or none (or forever) to keep them"
)
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86_400}
_DURATION = re.compile(r"(\d+(?:\.\d+)?)([smhd]?)")


def retention(text: str) -> float | None:
    """A retention: seconds ("3600", "90s", "30m", "12h", "1d"), or None for "none"/"forever".

    Raises:
        argparse.ArgumentTypeError: anything else, zero included, with the
            forms it takes (argparse then exits with code 2).
    """
    value = text.strip().lower()
    if value in ("none", "forever"):
        return None
    match = _DURATION.fullmatch(value)
    seconds = float(match.group(1)) * _UNITS[match.group(2) or "s"] if match else 0.0
    if not seconds >= MIN_RETENTION:
        raise argparse.ArgumentTypeError(
            f"expected {RETENTION_FORMS}; got {text!r} (a retention must be a minute or more)"
        )
    return seconds


def _vacuum_interval(text: str) -> float | None:
    if text.strip().lower() == "off":
        return None
    return positive_float(text)


def partition_interval(text: str) -> float:
    """A history partition interval ("1d", "6h", "30m", "3600"): divides a day, 15m to 1d.

    Raises:
        argparse.ArgumentTypeError: anything else, with the accepted range.
    """
    match = _DURATION.fullmatch(text.strip().lower())
    seconds = float(match.group(1)) * _UNITS[match.group(2) or "s"] if match else 0.0
    try:
        check_partition_interval(seconds)
    except ConfigurationError as exc:
        raise argparse.ArgumentTypeError(f"{exc} (from {text!r})") from None
    return seconds


def default_queues(app: App) -> tuple[str, ...]:
    """The queues a worker serves without --queues: "default", every queue the App's
    tasks default to, and the queues its webhooks send their deliveries to."""
    delivery = {w.queue for w in app.webhooks.values() if w.queue is not None}
    return tuple(sorted({t.defaults.queue for t in app.tasks.values()} | {"default"} | delivery))


def _duration(seconds: float | None) -> str:
    """How the help shows a retention: the largest whole unit."""
    if seconds is None:
        return "forever"
    for unit, size in sorted(_UNITS.items(), key=lambda item: -item[1]):
        if seconds % size == 0:
            return f"{seconds / size:g}{unit}"
    return f"{seconds:g}s"


def add_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register the `worker` command."""
    p = sub.add_parser("worker", help="run jobs", description="Claim and run jobs of an App.")
    p.add_argument("app", help="the App to run, as module:attribute (e.g. myapp.jobs:app)")
    add_dsn(p)
    p.add_argument(
        "--queues",
        "-q",
        default=None,
        help="comma-separated queues, or '*' for every queue, including queues that "
        "first appear while it runs (default: every queue the App's tasks use, "
        "'default', and the queues its webhooks send deliveries to)",
    )
    p.add_argument(
        "--concurrency", "-c", type=int, default=10, help="jobs at once, 1 to 10000 (default 10)"
    )
    p.add_argument(
        "--processes",
        type=_supervisor.parse_processes,
        default=1,
        metavar="N",
        help="worker processes under a supervisor that restarts crashed ones: "
        f"1 to {_supervisor.MAX_PROCESSES}, or auto for one per core (default 1: no supervisor)",
    )
    p.add_argument(
        "--poll-interval",
        type=positive_float,
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
    p.add_argument(
        "--heartbeat-interval",
        type=positive_float,
        default=5.0,
        help="seconds between the worker's heartbeats, less than --stale-after (default 5)",
    )
    p.add_argument(
        "--stale-after",
        type=positive_float,
        default=30.0,
        help="seconds without heartbeat before a worker is dead (default 30)",
    )
    p.add_argument(
        "--rescue-interval",
        type=positive_float,
        default=_DEFAULTS.rescue_interval,
        help="seconds between the leader's rescue passes, which find dead workers "
        f"(default {_DEFAULTS.rescue_interval:g})",
    )
    # -- retention (the leader's pruner) --
    for status in ("succeeded", "failed", "cancelled"):
        kept = getattr(_DEFAULTS, f"retention_{status}")
        p.add_argument(
            f"--retention-{status}",
            type=retention,
            default=kept,
            metavar="DURATION",
            help=f"how long {status} jobs are kept: {RETENTION_FORMS} (default {_duration(kept)})",
        )
    p.add_argument(
        "--vacuum-interval",
        type=_vacuum_interval,
        default=_DEFAULTS.vacuum_interval,
        metavar="SECONDS",
        help="seconds between the leader's checks of the live table's dead rows, which it "
        f"vacuums past {_DEFAULTS.vacuum_dead_rows:,}; off leaves it to autovacuum "
        f"(default {_DEFAULTS.vacuum_interval:g})",
    )
    p.add_argument(
        "--partition-interval",
        type=partition_interval,
        default=_DEFAULTS.partition_interval,
        metavar="DURATION",
        help="the span of finished_at in each history partition, which retention drops whole: "
        "15m to 1d, dividing a day evenly "
        f"(default {_duration(_DEFAULTS.partition_interval)})",
    )
    # -- leader and cron --
    p.add_argument(
        "--leader-interval",
        type=positive_float,
        default=_DEFAULTS.leader_interval,
        help=f"seconds between attempts to become leader (default {_DEFAULTS.leader_interval:g})",
    )
    p.add_argument(
        "--leader-dsn",
        default=None,
        help="direct or session-pooled address for the leader lock "
        "(when --dsn goes through a transaction-pooling PgBouncer)",
    )
    p.add_argument(
        "--cron-grace",
        type=positive_float,
        default=10.0,
        help="seconds late a cron tick may still fire without backfill (default 10)",
    )
    # -- health probes --
    p.add_argument(
        "--health-port",
        type=int,
        default=None,
        metavar="PORT",
        help="serve /livez and /readyz on this port (default: none; 0 picks a free one)",
    )
    p.add_argument(
        "--health-host",
        default=_DEFAULTS.health_host,
        metavar="HOST",
        help="the address of the health probes "
        f"(default {_DEFAULTS.health_host}: every interface, as a Kubernetes probe needs)",
    )
    # -- metrics --
    p.add_argument(
        "--metrics-port",
        type=_port,
        default=None,
        metavar="PORT",
        help="serve Prometheus metrics at http://ADDRESS:PORT/metrics "
        "(needs: pip install 'pgjobs[metrics]'; default: off)",
    )
    p.add_argument(
        "--metrics-address",
        default=_DEFAULTS.metrics_address,
        metavar="ADDRESS",
        help=f"the address the metrics server binds (default {_DEFAULTS.metrics_address}: "
        "every IPv4 address)",
    )
    p.set_defaults(handler=_run_worker)


def _port(text: str) -> int:
    """An argparse type: a TCP port, 1 to 65535."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if not 1 <= value <= 65_535:
        raise argparse.ArgumentTypeError(f"expected a TCP port from 1 to 65535, got {text!r}")
    return value


def _run_worker(args: argparse.Namespace) -> int:
    if args.processes > 1 and args.health_port is not None:
        # Every child would bind the same port; a probe answers for one process.
        raise ConfigurationError(
            "--health-port serves one worker process: use it with --processes 1 "
            "(one worker per container), or leave it out"
        )
    if args.processes > 1:
        if args.metrics_port is not None:
            raise ConfigurationError(
                "--metrics-port serves the metrics of one worker process, and the "
                f"{args.processes} processes of --processes would all take the same port; "
                "start one `pgjobs worker --metrics-port` per port instead"
            )
        # Each child runs this same command line with --processes 1.
        return _supervisor.supervise(args.processes)
    app = load_app(args.app)
    if args.dsn:
        app.dsn = args.dsn
    if args.queues:
        queues = tuple(q.strip() for q in args.queues.split(",") if q.strip())
    else:
        queues = default_queues(app)
    config = WorkerConfig(
        queues=queues,
        # Jobs enqueued to any other queue would wait unseen: say what is served.
        queues_note=None
        if args.queues
        else "no --queues given: the queues of the App's tasks, and 'default'",
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
        retention_succeeded=args.retention_succeeded,
        retention_failed=args.retention_failed,
        retention_cancelled=args.retention_cancelled,
        partition_interval=args.partition_interval,
        vacuum_interval=args.vacuum_interval,
        health_port=args.health_port,
        health_host=args.health_host,
        metrics_port=args.metrics_port,
        metrics_address=args.metrics_address,
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
