"""Time each dashboard page and API call on a million-row jobs table (a benchmark, not a test).

    python -m pgjobs.bench.dashboard --dsn postgresql://postgres@127.0.0.1/postgres

It creates (or reuses, with --reuse) the database `pgjobs_web_bench` on that
server, fills pgjobs.jobs with --rows jobs spread over 30 days (mostly
succeeded, some failed with tracebacks, a backlog of queued and scheduled
ones), serves the dashboard in-process on loopback, and reports the median and
95th percentile of each request over --repeat runs after a warm-up.

    python -m pgjobs.bench.dashboard --dsn ... --chart-hour 200000,2000000

times the overview chart's query instead, in each of its ranges, once per
number of jobs finished in the last hour: for each it makes a database of its
own (`pgjobs_web_bench_chart`, dropped after), writes that many jobs into the
history in batches of 1,000 as completers would, and reports the median and
95th percentile of the query over --repeat runs.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

import httpx
import psycopg
from psycopg.conninfo import make_conninfo

from pgjobs import App, _migrate
from pgjobs.web import _chart, create_app
from pgjobs.web._db import query
from pgjobs.web._serve import serve_in_thread

TOKEN = "bench-admin-token-0123456789"  # noqa: S105 - a throwaway token for loopback


def prepare(server_dsn: str, name: str, rows: int, reuse: bool) -> str:
    """The bench database's DSN, created and filled unless `reuse` finds it filled."""
    dsn = make_conninfo(server_dsn, dbname=name)
    with psycopg.connect(server_dsn, autocommit=True) as admin:
        exists = admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        if exists and not reuse:
            admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
        if not exists or not reuse:
            admin.execute(f'CREATE DATABASE "{name}"')
    _migrate.upgrade(dsn)
    with psycopg.connect(dsn, autocommit=True) as conn:
        found = conn.execute("SELECT count(*) FROM pgjobs.jobs").fetchone()
        if found and found[0] >= rows:
            print(f"reusing {found[0]:,} jobs in {name}", file=sys.stderr)
        else:
            started = time.perf_counter()
            conn.execute("TRUNCATE pgjobs.jobs_live, pgjobs.job_history RESTART IDENTITY")
            conn.execute(query("bench_partitions"))
            conn.execute(query("bench_fill"), {"rows": rows})
            print(f"filled {rows:,} jobs in {time.perf_counter() - started:.1f}s", file=sys.stderr)
            conn.execute(
                "VACUUM ANALYZE pgjobs.jobs_live, pgjobs.job_history,"
                " pgjobs.finished_per_minute, pgjobs.finished_per_hour"
            )
        conn.execute(query("bench_workers"))
    return dsn


def measure(call: Callable[[], httpx.Response], repeat: int) -> tuple[float, float, int]:
    """Median and p95 milliseconds of `call`, and its last status."""
    call()  # warm-up: prepared statements, pool, templates
    times = []
    status = 0
    for _ in range(repeat):
        started = time.perf_counter()
        status = call().status_code
        times.append((time.perf_counter() - started) * 1000)
    times.sort()
    return statistics.median(times), times[min(len(times) - 1, int(len(times) * 0.95))], status


def chart_cost(server_dsn: str, sizes: list[int], repeat: int) -> int:
    """Time the overview chart's query at each number of jobs finished in the last hour."""
    name = "pgjobs_web_bench_chart"
    dsn = make_conninfo(server_dsn, dbname=name)
    print(f"{'finished in the last hour':>26} {'range':>6} {'median ms':>10} {'p95 ms':>8} rows")
    medians: dict[str, list[float]] = {}
    for size in sizes:
        with psycopg.connect(server_dsn, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            admin.execute(f'CREATE DATABASE "{name}"')
        try:
            _migrate.upgrade(dsn)
            with psycopg.connect(dsn, autocommit=True) as conn:
                conn.execute(query("bench_partitions"))
                started = time.perf_counter()
                for first in range(0, size, 1000):
                    conn.execute(
                        query("bench_finished_hour"),
                        {"first": first, "last": min(first + 1000, size), "rows": size},
                    )
                took = time.perf_counter() - started
                print(f"wrote {size:,} jobs in {took:.1f}s", file=sys.stderr)
                conn.execute("VACUUM ANALYZE")
                for rng in _chart.RANGES.values():
                    params = {"step": rng.step, "buckets": rng.buckets, "queue": None, "task": None}
                    counted = 0

                    def run(params: dict[str, Any] = params) -> None:
                        nonlocal counted
                        rows = conn.execute(query("throughput"), params, prepare=False).fetchall()
                        counted = sum(int(r[1]) + int(r[2]) for r in rows)

                    median, p95 = _time(run, repeat)
                    medians.setdefault(rng.name, []).append(median)
                    print(f"{size:>26,} {rng.name:>6} {median:10.2f} {p95:8.2f} {counted:,} jobs")
        finally:
            with psycopg.connect(server_dsn, autocommit=True) as admin:
                admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    for rng_name, found in medians.items():
        print(
            f"range {rng_name}: median at {sizes[-1]:,} / median at {sizes[0]:,}"
            f" = {found[-1] / found[0]:.2f}x"
        )
    return 0


def _time(call: Callable[[], Any], repeat: int) -> tuple[float, float]:
    call()
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        call()
        times.append((time.perf_counter() - started) * 1000)
    times.sort()
    return statistics.median(times), times[min(len(times) - 1, int(len(times) * 0.95))]


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print one line per page or call."""
    parser = argparse.ArgumentParser(prog="python -m pgjobs.bench.dashboard", description=__doc__)
    parser.add_argument("--dsn", required=True, help="a server where a database may be created")
    parser.add_argument("--database", default="pgjobs_web_bench")
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--reuse", action="store_true", help="keep an already filled database")
    parser.add_argument(
        "--chart-hour",
        metavar="N,N",
        help="time only the overview chart's query, at each number of jobs finished in the hour",
    )
    args = parser.parse_args(argv)
    if args.chart_hour:
        try:
            sizes = [int(n.replace("_", "")) for n in args.chart_hour.split(",")]
        except ValueError:
            parser.error(f"--chart-hour takes numbers separated by commas, got {args.chart_hour!r}")
        if any(n < 1 for n in sizes):
            parser.error("--chart-hour takes positive numbers")
        return chart_cost(args.dsn, sizes, args.repeat)

    dsn = prepare(args.dsn, args.database, args.rows, args.reuse)
    app = App(dsn)
    for name in (f"task_{i}" for i in range(12)):
        app.task(name=name)(_noop)
    server = serve_in_thread(create_app(app, tokens=f"admin:{TOKEN}", refresh_seconds=0))
    auth = {"Authorization": f"Bearer {TOKEN}"}
    html = {**auth, "Accept": "text/html"}
    with psycopg.connect(dsn) as conn:
        row = conn.execute("SELECT max(id) FROM pgjobs.jobs").fetchone()
        top = int(row[0]) if row and row[0] else 1
        failed_ids = [
            int(r[0])
            for r in conn.execute(
                "SELECT id FROM pgjobs.jobs WHERE status = 'failed' ORDER BY id DESC LIMIT %s",
                (args.repeat * 4 + 4,),
            )
        ]
    with httpx.Client(base_url=server.url.rstrip("/"), timeout=60) as client:
        deep = client.get("/api/v1/jobs", params={"limit": "50"}, headers=auth).json()
        cursor = deep["next_cursor"]
        mid = f"{top // 2}"
        retry_ids = iter(failed_ids)

        def get(path: str, headers: dict[str, str] = auth, **params: str) -> Callable[[], Any]:
            return lambda: client.get(path, params=params, headers=headers)

        def retry() -> httpx.Response:
            return client.post(f"/api/v1/jobs/{next(retry_ids)}/retry", headers=auth)

        def submit() -> httpx.Response:
            return client.post("/api/v1/jobs", json={"task": "task_1", "args": {}}, headers=auth)

        cases: list[tuple[str, Callable[[], Any]]] = [
            ("page  /  (overview)", get("/", html)),
            ("page  /jobs", get("/jobs", html)),
            ("page  /jobs?status=failed", get("/jobs", html, status="failed")),
            ("page  /jobs?queue=q3&task=task_3", get("/jobs", html, queue="q3", task="task_3")),
            ("page  /jobs?status=queued&queue=q1", get("/jobs", html, status="queued", queue="q1")),
            ("page  /jobs?cursor=(page 2)", get("/jobs", html, cursor=cursor or "")),
            ("page  /jobs?q=<fingerprint>", get("/jobs", html, q="fp-500000")),
            ("page  /jobs?order=oldest", get("/jobs", html, order="oldest")),
            (
                "page  /jobs?order=priority&status=queued",
                get("/jobs", html, order="priority", status="queued"),
            ),
            ("page  /jobs?args={user_id}", get("/jobs", html, args=f'{{"user_id": {top - 5}}}')),
            (
                "page  /jobs?status=failed&error=boom",
                get("/jobs", html, status="failed", error="boom 9"),
            ),
            ("page  /?range=24h", get("/", html, range="24h")),
            ("page  /?range=7d&queue=q1", get("/", html, range="7d", queue="q1")),
            ("page  /jobs/<id>", get(f"/jobs/{mid}", html)),
            ("page  /jobs/<failed id>", get(f"/jobs/{failed_ids[-1]}", html)),
            ("page  /queues", get("/queues", html)),
            ("page  /workers", get("/workers", html)),
            ("page  /schedules", get("/schedules", html)),
            ("GET   /healthz", get("/healthz")),
            ("GET   /api/v1/jobs", get("/api/v1/jobs")),
            ("GET   /api/v1/jobs?status=failed", get("/api/v1/jobs", status="failed")),
            ("GET   /api/v1/jobs?task=task_7", get("/api/v1/jobs", task="task_7")),
            ("GET   /api/v1/jobs?status=scheduled", get("/api/v1/jobs", status="scheduled")),
            ("GET   /api/v1/jobs?cursor=(page 2)", get("/api/v1/jobs", cursor=cursor or "")),
            ("GET   /api/v1/jobs?fingerprint=", get("/api/v1/jobs", fingerprint="fp-500000")),
            ("GET   /api/v1/jobs/<id>", get(f"/api/v1/jobs/{mid}")),
            ("GET   /api/v1/stats", get("/api/v1/stats")),
            ("GET   /api/v1/queues", get("/api/v1/queues")),
            ("GET   /api/v1/workers", get("/api/v1/workers")),
            ("GET   /api/v1/schedules", get("/api/v1/schedules")),
            ("POST  /api/v1/jobs (submit)", submit),
            ("POST  /api/v1/jobs/<id>/retry", retry),
        ]
        print(f"{'request':42} {'median ms':>10} {'p95 ms':>8} status")
        worst = 0.0
        for label, call in cases:
            median, p95, status = measure(call, args.repeat)
            worst = max(worst, median)
            print(f"{label:42} {median:10.1f} {p95:8.1f} {status}")
    server.stop()
    print(f"slowest median: {worst:.1f} ms (target < 200 ms)")
    return 0


def _noop() -> None:
    """A stand-in task, so submissions pass the App's task check."""


if __name__ == "__main__":
    raise SystemExit(main())
