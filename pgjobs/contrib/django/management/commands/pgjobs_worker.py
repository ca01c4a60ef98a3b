"""`manage.py pgjobs_worker`: a pgjobs worker that runs the project's Django tasks."""

from __future__ import annotations

import asyncio
import os
import sys
import threading
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from pgjobs import _log
from pgjobs._app import App
from pgjobs.contrib.django import _compat
from pgjobs.contrib.django._backend import PgJobsBackend, dsn_for
from pgjobs.contrib.django._runner import DjangoTasks
from pgjobs.worker import Worker, WorkerConfig


class Command(BaseCommand):  # type: ignore[misc]
    help = (
        "Claim and run the jobs of a PgJobsBackend's queues. Django is set up once, "
        "for the whole process; each job runs in a worker thread between "
        "close_old_connections() calls, as a request does. SIGTERM stops it gracefully."
    )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument(
            "--backend", default="default", help="the TASKS alias to serve (default: default)"
        )
        parser.add_argument(
            "--queues",
            "-q",
            default=None,
            help="comma-separated queues (default: the backend's QUEUES)",
        )
        parser.add_argument(
            "--concurrency", "-c", type=int, default=10, help="jobs at once (default 10)"
        )
        parser.add_argument(
            "--poll-interval",
            type=float,
            default=1.0,
            help="seconds between polls when no notification comes (default 1)",
        )
        parser.add_argument(
            "--grace-period",
            type=float,
            default=30.0,
            help="seconds running jobs get to finish after SIGTERM (default 30)",
        )
        parser.add_argument(
            "--log-format", choices=["console", "json"], default="console", help="log output"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        backend = _compat.task_backends[options["backend"]]
        if not isinstance(backend, PgJobsBackend):
            raise CommandError(
                f"TASKS[{options['backend']!r}] is {type(backend).__name__}, not "
                "pgjobs.contrib.django.PgJobsBackend; pass --backend ALIAS"
            )
        if options["queues"]:
            queues = tuple(q.strip() for q in options["queues"].split(",") if q.strip())
        else:
            queues = tuple(sorted(backend.queues)) or ("default",)
        _log.configure("info", options["log_format"])
        app = App(dsn_for(backend.database))
        tasks = DjangoTasks(app)
        app.tasks = tasks
        config = WorkerConfig(
            queues=queues,
            queues_note=None if options["queues"] else "no --queues given: the backend's QUEUES",
            concurrency=options["concurrency"],
            poll_interval=options["poll_interval"],
            grace_period=options["grace_period"],
        )
        worker = Worker(app, config)
        tasks.worker = worker
        code = asyncio.run(worker.run(handle_signals=True))
        stuck = [t for t in threading.enumerate() if t.name.startswith("pgjobs-job")]
        if stuck:
            # A task still runs in a thread after its job was given back: do
            # not let it hold the process open (as `python -m pgjobs worker`).
            sys.stderr.flush()
            os._exit(code)
        if code:
            sys.exit(code)
