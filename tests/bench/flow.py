"""`python -m tests.bench.flow [DSN] rate|chain|group|all`: rate-limit accuracy and workflow speed.

Each workload makes a scratch database (bench_flow_*), migrates it, runs
real worker processes (`python -m pgjobs worker tests.bench.flow:app`) and
reads what happened from the jobs' own timestamps (`started_at` is the
claim's transaction time, `finished_at` the outcome's), then drops the
database. It prints numbers; it asserts nothing.

- `rate`: a queue at `--rate` (default 10/s) with `--burst` (default: the
  queue's default), `--workers` worker processes (default 3) and a backlog
  bigger than the run needs. Prints how many jobs started in the first
  `--seconds` (default 60) from the first start, against the rate's
  figure, the most that started in any one second (a window [t, t + 1 s))
  against rate + burst - 1, and the gaps between starts.
- `chain`: a chain of `--steps` (default 1,000) no-op jobs, one worker:
  steps per second from the first step's start to the last one's end, and
  the gap from a step's end to the next one's start (p50, p99).
- `group`: `--members` (default 10,000) no-op jobs with a callback, one
  worker: the members' drain rate, and the time from the last member's end
  to the callback's start.
"""

from __future__ import annotations

import argparse
import itertools
import os
import secrets
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
from psycopg.conninfo import make_conninfo

import pgjobs
from pgjobs import _migrate

app = pgjobs.App()

REPO = Path(__file__).resolve().parents[2]


@app.task(name="bench.noop", queue="bench-flow", max_attempts=1)
async def noop(i: int) -> None:
    """Nothing: the cost measured is the queue's (async, as the drain benchmark's)."""


def percentile(values: list[float], q: float) -> float:
    """The q-quantile (0 to 1) of values, by nearest rank."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


@contextmanager
def scratch(server: str) -> Iterator[str]:
    """A migrated database of its own, dropped afterwards."""
    name = f"bench_flow_{secrets.token_hex(3)}"
    with psycopg.connect(server, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        dsn = make_conninfo(server, dbname=name)
        _migrate.upgrade(dsn)
        yield dsn
    finally:
        app.close()
        with psycopg.connect(server, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextmanager
def workers(dsn: str, count: int, *args: str) -> Iterator[list[subprocess.Popen[bytes]]]:
    """`count` worker processes of this module's App, stopped (SIGTERM) afterwards."""
    env = {
        **os.environ,
        "PGJOBS_DSN": dsn,
        "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
    }
    command = [sys.executable, "-m", "pgjobs", "--log-level", "warning", "worker"]
    procs = [
        subprocess.Popen([*command, "tests.bench.flow:app", *args], env=env, cwd=REPO)
        for _ in range(count)
    ]
    try:
        yield procs
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(30)


def wait_for(conn: psycopg.Connection, query: str, timeout: float) -> None:
    """Poll until `query` returns true."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        row = conn.execute(query).fetchone()
        if row is not None and row[0]:
            return
        time.sleep(0.1)
    raise RuntimeError(f"not done within {timeout} s: {query}")


# The starts of the rated queue: how many in the first :seconds from the
# first start, and the most in any window [t, t + 1 s) among those.
RATE_COUNTS = """
WITH starts AS (
    SELECT started_at FROM pgjobs.jobs
    WHERE queue = 'bench-rate' AND started_at IS NOT NULL
), run AS (
    SELECT started_at FROM starts
    WHERE started_at < (SELECT min(started_at) FROM starts) + make_interval(secs => %(seconds)s)
), windows AS (
    SELECT count(*) OVER (
        ORDER BY started_at RANGE BETWEEN CURRENT ROW AND interval '999999 microseconds' FOLLOWING
    ) AS n
    FROM run
)
SELECT (SELECT count(*) FROM run), (SELECT max(n) FROM windows),
       (SELECT array_agg(extract(epoch FROM started_at)::double precision ORDER BY started_at)
          FROM run)
"""


def bench_rate(server: str, rate: str, burst: int | None, seconds: float, count: int) -> None:
    per, unit = rate.split("/")
    per_second = int(per) / {"s": 1, "m": 60, "h": 3600}[unit]
    with scratch(server) as dsn, psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO pgjobs.queues (name, rate_limit, rate_burst)"
            " VALUES ('bench-rate', %s, %s)",
            (rate, burst),
        )
        (effective,) = conn.execute(
            "SELECT coalesce(rate_burst, pgjobs.rate_default_burst(rate_limit))"
            " FROM pgjobs.queues WHERE name = 'bench-rate'"
        ).fetchone() or (1,)
        app.dsn = dsn
        backlog = int(per_second * seconds * 1.2) + 50
        app.enqueue_many([noop.options(queue="bench-rate").job(i) for i in range(backlog)])
        # A poll far longer than a token's gap: the workers come for each token when it is due.
        with workers(dsn, count, "--queues", "bench-rate", "-c", "4", "--poll-interval", "5"):
            wait_for(conn, "SELECT count(*) > 0 FROM pgjobs.jobs WHERE started_at IS NOT NULL", 60)
            wait_for(
                conn,
                "SELECT max(started_at) > min(started_at) + make_interval(secs => "
                f"{seconds + 1}) FROM pgjobs.jobs WHERE started_at IS NOT NULL",
                seconds * 2 + 30,
            )
        row = conn.execute(RATE_COUNTS, {"seconds": seconds}).fetchone()
        assert row is not None
        started, busiest, times = row
    gaps = [(b - a) * 1000 for a, b in itertools.pairwise(times)]
    step = 1000 / per_second
    expected = per_second * seconds
    print(
        f"rate {rate}, burst {effective}, {count} worker processes, {seconds:g} s: "
        f"{started} started (expected {expected:g}, {started / expected:.3f}x); "
        f"busiest 1 s window {busiest} (limit {per_second + effective - 1:g})"
    )
    print(
        f"  gap between starts (step {step:.1f} ms): p1 {percentile(gaps, 0.01):.1f} ms, "
        f"p50 {percentile(gaps, 0.5):.1f} ms, p99 {percentile(gaps, 0.99):.1f} ms, "
        f"mean {sum(gaps) / len(gaps):.2f} ms"
    )


def bench_chain(server: str, steps: int) -> None:
    with scratch(server) as dsn, psycopg.connect(dsn, autocommit=True) as conn:
        app.dsn = dsn
        with workers(dsn, 1, "--queues", "bench-flow", "-c", "10"):
            time.sleep(2)  # the worker is up and listening: its start is not timed
            with psycopg.connect(dsn) as tx:
                ids = pgjobs.chain(*[noop.job(i) for i in range(steps)]).enqueue(tx)
            wait_for(
                conn, f"SELECT status = 'succeeded' FROM pgjobs.jobs WHERE id = {ids[-1]}", 600
            )
        rows = conn.execute(
            "SELECT extract(epoch FROM started_at)::double precision,"
            " extract(epoch FROM finished_at)::double precision"
            " FROM pgjobs.jobs WHERE id = ANY(%s) ORDER BY id",
            (ids,),
        ).fetchall()
    took = rows[-1][1] - rows[0][0]
    hand_off = [(b[0] - a[1]) * 1000 for a, b in itertools.pairwise(rows)]
    own = [(end - start) * 1000 for start, end in rows]
    print(
        f"chain of {steps} no-op steps, 1 worker: {took:.2f} s, {steps / took:.0f} steps/s "
        f"(target >= 200)"
    )
    print(
        f"  a step's end to the next one's start: p50 {percentile(hand_off, 0.5):.2f} ms, "
        f"p99 {percentile(hand_off, 0.99):.2f} ms, max {max(hand_off):.2f} ms"
    )
    print(
        f"  a step's start to its end: p50 {percentile(own, 0.5):.2f} ms, "
        f"p99 {percentile(own, 0.99):.2f} ms"
    )


def bench_group(server: str, members: int) -> None:
    with scratch(server) as dsn, psycopg.connect(dsn, autocommit=True) as conn:
        app.dsn = dsn
        with psycopg.connect(dsn) as tx:
            ids = pgjobs.group([noop.job(i) for i in range(members)]).then(noop.job(-1)).enqueue(tx)
        with workers(dsn, 1, "--queues", "bench-flow", "-c", "10"):
            wait_for(
                conn, f"SELECT status = 'succeeded' FROM pgjobs.jobs WHERE id = {ids[-1]}", 600
            )
        row = conn.execute(
            "SELECT extract(epoch FROM min(started_at) FILTER (WHERE id <> %(cb)s))::float8,"
            " extract(epoch FROM max(finished_at) FILTER (WHERE id <> %(cb)s))::float8,"
            " extract(epoch FROM max(started_at) FILTER (WHERE id = %(cb)s))::float8"
            " FROM pgjobs.jobs WHERE id = ANY(%(ids)s)",
            {"cb": ids[-1], "ids": ids},
        ).fetchone()
        assert row is not None
    first, last, callback = row
    print(
        f"group of {members} no-op members, 1 worker: members drained at "
        f"{members / (last - first):.0f} jobs/s; callback started "
        f"{(callback - last) * 1000:.1f} ms after the last member ended (target <= 1000 ms)"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("dsn", nargs="?", default=os.environ.get("PGJOBS_DSN"))
    parser.add_argument("workload", choices=["rate", "chain", "group", "all"])
    parser.add_argument("--rate", default="10/s")
    parser.add_argument("--burst", type=int, default=None)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--workers", type=int, default=3)
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--members", type=int, default=10_000)
    args = parser.parse_args()
    if not args.dsn:
        parser.error("give a DSN, or set PGJOBS_DSN")
    if args.workload in ("rate", "all"):
        bench_rate(args.dsn, args.rate, args.burst, args.seconds, args.workers)
    if args.workload in ("chain", "all"):
        bench_chain(args.dsn, args.steps)
    if args.workload in ("group", "all"):
        bench_group(args.dsn, args.members)


if __name__ == "__main__":
    main()
