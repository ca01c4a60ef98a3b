"""`python -m pgjobs demo`: a worker, a few hundred sample jobs and a summary, on any machine."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import shlex
import shutil
import signal
import sys
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any, TextIO

import psycopg
import structlog
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from pgjobs import _connect, _dsn, _migrate
from pgjobs._table import table
from pgjobs.errors import ConfigurationError, PgjobsError

#: The states the progress line shows, in order. `scheduled` and `retrying`
#: are queued jobs that are not yet due, or that have failed before.
STATES = ("queued", "scheduled", "retrying", "running", "succeeded", "failed", "cancelled")
FINISHED = ("succeeded", "failed", "cancelled")

# The demo's queries are shown here rather than in pgjobs/sql/: they read only
# the demo's own jobs (by id) and are printed for people to copy.
_PROGRESS_SQL = """
SELECT count(*) FILTER (WHERE status = 'queued' AND attempts = 0 AND run_at <= now()),
       count(*) FILTER (WHERE status = 'queued' AND attempts = 0 AND run_at > now()),
       count(*) FILTER (WHERE status = 'queued' AND attempts > 0),
       count(*) FILTER (WHERE status = 'running'),
       count(*) FILTER (WHERE status = 'succeeded'),
       count(*) FILTER (WHERE status = 'failed'),
       count(*) FILTER (WHERE status = 'cancelled')
FROM pgjobs.jobs WHERE id = ANY(%s)
"""
_BY_TASK_SQL = """
SELECT task, queue, status::text, count(*), count(*) FILTER (WHERE attempts > 1), sum(attempts)
FROM pgjobs.jobs WHERE id = ANY(%s) GROUP BY 1, 2, 3 ORDER BY 1, 2, 3
"""
# How long first attempts waited once due, per priority: priorities at work.
_WAIT_SQL = """
SELECT priority, percentile_cont(0.5) WITHIN GROUP (
           ORDER BY extract(epoch FROM started_at - run_at))
FROM pgjobs.jobs WHERE id = ANY(%s) AND attempts = 1 AND started_at IS NOT NULL
GROUP BY 1 ORDER BY 1
"""
_FAILED_SQL = """
SELECT id, task, attempts, errors FROM pgjobs.jobs
WHERE id = ANY(%s) AND status = 'failed' ORDER BY id
"""
_CANCEL_SQL = """
SELECT count(pgjobs.cancel(id)) FROM pgjobs.jobs WHERE id = ANY(%s) AND status = 'queued'
"""
_PRIORITY_NAMES = {0: "critical", 1: "high", 2: "normal", 3: "low", 4: "bulk"}


def run(args: argparse.Namespace) -> int:
    """The `demo` command; returns the exit code (0 done, 130 interrupted).

    Raises:
        ConfigurationError: contradictory options, or no DSN and no embedded server.
    """
    from pgjobs.demo._app import MIN_JOBS

    if not MIN_JOBS <= args.jobs <= 20_000:
        raise ConfigurationError(f"--jobs must be from {MIN_JOBS} to 20000, got {args.jobs}")
    embedded = args.embedded or args.data_dir is not None
    if embedded and args.dsn:
        raise ConfigurationError("--dsn and --embedded/--data-dir contradict each other; pick one")
    if not args.show_logs:
        # Each retry logs a warning and the doomed job an error: useful in a
        # worker, noise here, where the summary reports them.
        structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.CRITICAL))
    dsn = None if embedded else _dsn.resolve(args.dsn)
    out = sys.stdout
    with _terminate_as_interrupt():
        if dsn is not None:
            say(out, f"Using the database at {_dsn.redact(dsn)}")
            return _demo(out, dsn, None, args)
        return _demo_embedded(out, args)


def say(out: TextIO, text: str = "") -> None:
    """Print a line of the demo's output at once (it may be piped)."""
    out.write(text + "\n")
    out.flush()


@contextlib.contextmanager
def _terminate_as_interrupt() -> Iterator[None]:
    # SIGTERM and SIGHUP would kill the process on the spot and orphan the
    # embedded server (pg_ctl detaches it). Make them unwind like Ctrl-C.
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    previous = {sig: signal.signal(sig, interrupt) for sig in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _demo_embedded(out: TextIO, args: argparse.Namespace) -> int:
    from pgjobs._embedded import EmbeddedPostgres

    server = EmbeddedPostgres(args.data_dir)
    why = (
        "As asked"
        if args.embedded or args.data_dir is not None
        else "No database configured (--dsn, PGJOBS_DSN, DATABASE_URL)"
    )
    say(out, f"{why}: starting an embedded PostgreSQL in {server.data_dir}")
    try:
        started = time.monotonic()
        server.start()
        say(out, f"  ready in {time.monotonic() - started:.1f} s")
        return _demo(out, server.dsn, server.bin_dir, args)
    except KeyboardInterrupt:
        return 130
    finally:
        server.stop()
        if (server.data_dir / "postmaster.pid").exists():
            # pgserver stops the server only when no other process it knows of
            # still uses it, and a run killed with SIGKILL is never forgotten.
            pg_ctl = shlex.quote(str(server.bin_dir / "pg_ctl"))
            say(out, f"PostgreSQL is still running in {args.data_dir}, left by an earlier run that")
            say(
                out, f"was killed. Stop it with: {pg_ctl} -D {shlex.quote(str(args.data_dir))} stop"
            )
        else:
            where = f"; its data is kept in {args.data_dir}" if args.data_dir else ""
            say(out, f"Embedded PostgreSQL stopped{where}.")


def _demo(out: TextIO, dsn: str, bin_dir: Path | None, args: argparse.Namespace) -> int:
    before, after = _migrate.upgrade(dsn)
    state = "up to date" if before == after else f"migrated from {before or 'nothing'}"
    say(out, f"  pgjobs schema {state} (revision {after})")
    dashboard = None if args.no_dashboard else _start_dashboard(out, dsn, args.dashboard_port)
    try:
        report = asyncio.run(_play(out, dsn, args.jobs, args.concurrency))
        say(out)
        say(out, render_summary(report))
        if report.interrupted:
            return 130
        say(out)
        say(out, render_inspection(dsn, bin_dir, report))
        if dashboard is not None:
            say(out, f"\n  dashboard: {dashboard.url}")
        if bin_dir is not None or dashboard is not None:
            _hold(out, keep_running=args.keep_running)
        return 0
    finally:
        if dashboard is not None:
            dashboard.stop()


def _start_dashboard(out: TextIO, dsn: str, port: int) -> Any:
    """Serve the dashboard on loopback while the demo runs, if the web extra is installed."""
    try:
        from pgjobs.demo._app import app as demo_app
        from pgjobs.web import create_app
        from pgjobs.web._serve import serve_in_thread
    except ModuleNotFoundError:
        say(out, "  (pip install 'pgjobs[web]' to watch the run in the dashboard)")
        return None
    # Loopback only and no tokens: the dashboard answers only this machine.
    web = create_app(demo_app, dsn=dsn, refresh_seconds=1)
    try:
        server = serve_in_thread(web, port=port)
    except PgjobsError:  # the port is taken: any free one will do
        server = serve_in_thread(web, port=0)
    say(out, f"  dashboard: {server.url} (loopback only; it refreshes every second)")
    return server


def _hold(out: TextIO, *, keep_running: bool) -> None:
    """Keep the embedded server up while the user tries the psql line."""
    try:
        if keep_running:
            say(out, "The embedded PostgreSQL keeps running. Press Ctrl-C to stop it.")
            threading.Event().wait()
        elif sys.stdin.isatty():
            say(
                out,
                "The psql line works until you press Enter, which stops the embedded PostgreSQL.",
            )
            input()
        else:
            say(
                out,
                "stdin is not a terminal, so the embedded PostgreSQL stops now "
                "(run with --keep-running to keep it for psql).",
            )
    except (KeyboardInterrupt, EOFError):
        say(out)


# -- the run -----------------------------------------------------------------


@dataclass
class Report:
    """What the demo's jobs did, read back from pgjobs.jobs."""

    total: int
    elapsed: float
    interrupted: bool = False
    cancelled_at_exit: int = 0
    #: (task, queue, status, jobs, retried jobs, attempts) rows.
    by_task: list[tuple[str, str, str, int, int, int]] = field(default_factory=list)
    #: priority -> median seconds a first attempt waited once due.
    waits: dict[int, float] = field(default_factory=dict)
    #: (id, task, attempts, errors) of each failed job.
    failed: list[tuple[int, str, int, list[dict[str, Any]]]] = field(default_factory=list)


async def _play(out: TextIO, dsn: str, count: int, concurrency: int) -> Report:
    from pgjobs.demo import _app as _demo_app
    from pgjobs.worker import Worker, WorkerConfig

    app = _demo_app.app
    app.dsn = dsn
    sample = _demo_app.sample_jobs(count)
    worker = Worker(
        app,
        WorkerConfig(
            queues=_demo_app.QUEUES, concurrency=concurrency, poll_interval=0.5, grace_period=5.0
        ),
    )
    interrupted = asyncio.Event()

    def on_signal() -> None:
        # First Ctrl-C: finish the running jobs (milliseconds here). Second: now.
        worker.request_stop(force=interrupted.is_set())
        interrupted.set()

    loop = asyncio.get_running_loop()
    # The loop's handlers replace the process's; put those back afterwards
    # (remove_signal_handler alone would leave SIGTERM at its default: death).
    previous = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    for sig in previous:
        loop.add_signal_handler(sig, on_signal)
    running = asyncio.create_task(worker.run(), name="pgjobs-demo-worker")
    try:
        async with await _connect.connect_async(dsn, _connect.APP, autocommit=True) as conn:
            # One transaction: the bulk insert and the single enqueue commit together.
            async with conn.transaction():
                ids = await app.enqueue_many_async(sample.bulk, conn=conn)
                doomed = await _demo_app.charge_card.options(conn=conn).enqueue_async(
                    order_id=sample.doomed_order, amount_cents=4999
                )
            if doomed is None:  # it has no fingerprint, so nothing can skip it
                raise RuntimeError("the demo's failing job was not enqueued")
            ids.append(doomed)
            say(
                out,
                f"  enqueued {len(ids)} jobs in one transaction ({len(sample.bulk)} in one "
                f"bulk insert): {sample.delayed} delayed by 1-2 s, {sample.flaky} that fail "
                "once or twice, 1 that always fails",
            )
            say(
                out,
                f"  worker running in this process: {concurrency} slots, queues "
                f"{', '.join(_demo_app.QUEUES)}",
            )
            started = time.monotonic()
            await _watch(out, conn, ids, running, interrupted, started)
            elapsed = time.monotonic() - started
            worker.request_stop()
            await running
            report = Report(total=len(ids), elapsed=elapsed, interrupted=interrupted.is_set())
            if report.interrupted:
                cur = await conn.execute(_CANCEL_SQL, (ids,))
                row = await cur.fetchone()
                report.cancelled_at_exit = int(row[0]) if row else 0
            await _read_report(conn, ids, report)
    finally:
        for sig, handler in previous.items():
            loop.remove_signal_handler(sig)
            if handler is not None:
                signal.signal(sig, handler)
        if not running.done():
            worker.request_stop(force=True)
        await asyncio.gather(running, return_exceptions=True)
        await app.aclose()
    return report


async def _watch(
    out: TextIO,
    conn: psycopg.AsyncConnection[Any],
    ids: list[int],
    running: asyncio.Task[int],
    interrupted: asyncio.Event,
    started: float,
) -> None:
    """Show progress until every job has finished, the user interrupts, or the worker dies."""
    tty = out.isatty()
    last_print = 0.0
    last_change, last_counts = time.monotonic(), None
    while True:
        cur = await conn.execute(_PROGRESS_SQL, (ids,))
        row = await cur.fetchone()
        if row is None:  # an aggregate without GROUP BY always returns one row
            raise RuntimeError("the demo's progress query returned no row")
        counts = dict(zip(STATES, (int(v) for v in row), strict=True))
        now = time.monotonic()
        done = sum(counts[s] for s in FINISHED) == len(ids)
        if tty:
            width = shutil.get_terminal_size().columns - 1
            out.write("\r\x1b[K" + progress_line(counts, len(ids), now - started, bar=True)[:width])
            out.flush()
        elif done or now - last_print >= 1.0:
            say(out, progress_line(counts, len(ids), now - started, bar=False))
            last_print = now
        if done or interrupted.is_set():
            break
        if running.done():
            running.result()  # the worker's own error, if it raised
            raise PgjobsError("the demo's worker stopped before its jobs were done")
        if counts != last_counts:
            last_change, last_counts = now, counts
        elif now - last_change > 30:
            raise PgjobsError(
                "the demo's jobs made no progress for 30 s; is the database overloaded?"
            )
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(interrupted.wait(), 0.25)
    if tty:
        out.write("\n")
    if interrupted.is_set():
        say(out, "Interrupted: stopping the worker (Ctrl-C again to stop at once).")


async def _read_report(conn: psycopg.AsyncConnection[Any], ids: list[int], report: Report) -> None:
    cur = await conn.execute(_BY_TASK_SQL, (ids,))
    report.by_task = [
        (str(r[0]), str(r[1]), str(r[2]), int(r[3]), int(r[4]), int(r[5]))
        for r in await cur.fetchall()
    ]
    cur = await conn.execute(_WAIT_SQL, (ids,))
    report.waits = {int(r[0]): float(r[1]) for r in await cur.fetchall()}
    cur = await conn.execute(_FAILED_SQL, (ids,))
    report.failed = [
        (int(r[0]), str(r[1]), int(r[2]), list(r[3] or [])) for r in await cur.fetchall()
    ]


# -- rendering (pure) --------------------------------------------------------


def progress_line(counts: Mapping[str, int], total: int, elapsed: float, *, bar: bool) -> str:
    """One progress line: done/total, then the count of each state that is not zero."""
    done = sum(counts.get(s, 0) for s in FINISHED)
    if not bar:
        states = ", ".join(f"{s} {counts[s]}" for s in STATES if counts.get(s))
        return f"  progress: {done}/{total} done after {elapsed:.1f} s ({states})"
    # Terse, to fit 80 columns: `succeeded` is what `done` mostly counts.
    states = "  ".join(f"{s} {counts[s]}" for s in STATES if counts.get(s) and s != "succeeded")
    filled = 10 * done // total if total else 10
    return f"  [{'#' * filled}{'.' * (10 - filled)}] {done}/{total}  {elapsed:4.1f}s  {states}"


def render_summary(report: Report) -> str:
    """The summary: jobs per task and status, throughput, waits by priority, the failures."""
    statuses = [
        s
        for s in ("succeeded", "failed", "queued", "running", "cancelled")
        if s in ("succeeded", "failed") or any(r[2] == s for r in report.by_task)
    ]
    per_task: dict[tuple[str, str], dict[str, int]] = {}
    for task, queue, status, jobs, retried, attempts in report.by_task:
        row = per_task.setdefault((task, queue), {"retried": 0, "attempts": 0})
        row[status] = row.get(status, 0) + jobs
        row["retried"] += retried
        row["attempts"] += attempts
    headers = ["task", "queue", *statuses, "retried", "attempts"]
    columns = [*statuses, "retried", "attempts"]
    rows: list[Sequence[object]] = [
        [task, queue, *(counts.get(c, 0) for c in columns)]
        for (task, queue), counts in per_task.items()
    ]
    rows.append(["total", "", *(sum(c.get(k, 0) for c in per_task.values()) for k in columns)])
    ran = sum(r[3] for r in report.by_task if r[2] in ("succeeded", "failed"))
    rate = ran / report.elapsed if report.elapsed > 0 else 0.0
    lines = ["Summary", _indent(table(headers, rows)), ""]
    lines.append(
        f"  {ran} of {report.total} jobs ran to the end in {report.elapsed:.1f} s: "
        f"{rate:.0f} jobs/s"
    )
    lines.append(
        "  (the handlers sleep 20-300 ms to imitate work, and the time includes "
        "the delays and retry backoffs)"
    )
    if report.waits:
        waits = ", ".join(
            f"{_PRIORITY_NAMES.get(p, p)} {w:.2f} s" for p, w in sorted(report.waits.items())
        )
        lines.append(f"  median wait once due, by priority: {waits}")
    if report.interrupted:
        lines.append(f"  interrupted: {report.cancelled_at_exit} jobs still queued were cancelled")
    for job_id, task, attempts, errors in report.failed:
        lines.append("")
        lines.append(
            f"  Job {job_id} ({task}) is failed, the dead-letter state, after {attempts} attempts:"
        )
        for entry in errors:
            kind = str(entry.get("type", "?")).rsplit(".", 1)[-1]
            lines.append(
                f"    attempt {entry.get('attempt', '?')}: {kind}: {entry.get('message', '')}"
            )
    return "\n".join(lines)


def psql_command(dsn: str, bin_dir: Path | None) -> tuple[str, bool]:
    """The shell command that opens psql on `dsn`, and whether a password was left out.

    A password is never printed: psql asks for it (or reads PGPASSWORD).
    """
    params = conninfo_to_dict(dsn)
    hidden = bool(params.pop("password", None))
    target = make_conninfo("", **params) if hidden else dsn
    psql = shlex.quote(str(bin_dir / "psql")) if bin_dir is not None else "psql"
    return f"{psql} {shlex.quote(target)}", hidden


def render_inspection(dsn: str, bin_dir: Path | None, report: Report) -> str:
    """The psql line and a few queries that show the demo's jobs."""
    command, hidden = psql_command(dsn, bin_dir)
    failed_id = report.failed[0][0] if report.failed else 0
    lines = ["Inspect the jobs with plain SQL:", f"  {command}"]
    if hidden:
        lines.append("  (the password is left out: psql asks for it, or set PGPASSWORD)")
    lines += [
        "",
        "  SELECT status, count(*) FROM pgjobs.jobs GROUP BY 1;",
        "  SELECT task, state, count(*) FROM pgjobs.job_states",
        "    WHERE task LIKE 'demo.%' GROUP BY 1, 2 ORDER BY 1, 2;",
        "  SELECT * FROM pgjobs.queue_stats;",
        "  SELECT id, task, attempts, last_error_message FROM pgjobs.failed_jobs;",
        "  SELECT e ->> 'attempt' AS attempt, e ->> 'type' AS type, e ->> 'message' AS message",
        f"    FROM pgjobs.jobs, jsonb_array_elements(errors) AS e WHERE id = {failed_id};",
    ]
    return "\n".join(lines)


def _indent(text: str) -> str:
    return "\n".join(f"  {line}" for line in text.splitlines())
