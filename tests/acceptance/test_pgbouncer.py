"""Through a stock transaction-pooling PgBouncer: drain and cron exactly once, enqueue, dashboard.

The workers run as real `python -m pgjobs worker` subprocesses whose DSN is
the PgBouncer's, poll-only (`--no-listen`), with the leader's lock on a
direct `--leader-dsn` (or without one: every worker runs the leader's duties).
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import psycopg
import pytest

import pgjobs
from tests import pgbouncer
from tests.apps.basic import record
from tests.conftest import WorkerProcess, wait_until
from tests.pgbouncer import PgBouncer

pytestmark = pytest.mark.skipif(
    not pgbouncer.available(),
    reason=f"no pgbouncer at {pgbouncer.BINARY}: apt-get install pgbouncer (CI installs it)",
)

APP = "tests.apps.basic:app"
CRON_APP = "tests.acceptance.test_cron_failover:app"


@pytest.fixture(scope="module")
def bouncer(server_dsn: str, database: str) -> Iterator[PgBouncer]:
    """A PgBouncer in transaction mode in front of the test server."""
    started = PgBouncer(server_dsn)
    try:
        started.wait_ready(database)
        yield started
    finally:
        started.stop()


@pytest.fixture
def pooled_worker(dsn: str, bouncer: PgBouncer, tmp_path: Path) -> Iterator[object]:
    """Start worker subprocesses whose DSN goes through PgBouncer."""
    started: list[WorkerProcess] = []

    def start(app: str, *args: str) -> WorkerProcess:
        log = tmp_path / f"worker-{len(started)}.log"
        worker = WorkerProcess(bouncer.dsn(dsn), app, ["--no-listen", *args], log)
        started.append(worker)
        return worker

    yield start
    for worker in started:
        worker.stop()


def count(conn: psycopg.Connection, sql: str, *params: object) -> object:
    row = conn.execute(sql, params).fetchone()
    assert row is not None
    return row[0]


def stop(workers: list[WorkerProcess]) -> None:
    for worker in workers:
        worker.signal(signal.SIGTERM)
    assert [worker.wait() for worker in workers] == [0] * len(workers)
    for worker in workers:
        assert "db.unavailable" not in worker.output(), worker.output()[-3000:]


def test_two_workers_drain_2000_jobs_exactly_once(dsn, conn, pooled_worker) -> None:
    record.app.dsn = dsn  # enqueued directly: the producer's path is not under test
    try:
        jobs = [record.job(f"k{i}") for i in range(2000)]
        for start in range(0, len(jobs), 1000):
            record.app.enqueue_many(jobs[start : start + 1000])
    finally:
        record.app.close()
    args = ("--leader-dsn", dsn, "--concurrency", "10", "--poll-interval", "0.2")
    workers = [pooled_worker(APP, *args) for _ in range(2)]
    wait_until(
        lambda: count(conn, "SELECT count(*) FROM pgjobs.jobs WHERE status = 'succeeded'") == 2000,
        timeout=120,
        interval=0.5,
    )
    assert count(conn, "SELECT count(*) FROM test_runs") == 2000
    assert count(conn, "SELECT count(DISTINCT job_key) FROM test_runs") == 2000
    stop(workers)
    assert count(conn, "SELECT count(*) FROM pgjobs.workers") == 0


def test_apps_enqueue_concurrently_through_pgbouncer_when_pooled(
    dsn, conn, bouncer: PgBouncer
) -> None:
    # Without `pooled`, psycopg prepares a statement after five runs, and the
    # next transaction may run on another server connection ("prepared
    # statement does not exist"): several producers make that likely.
    errors: list[str] = []

    def produce(producer: int) -> None:
        app = pgjobs.App(bouncer.dsn(dsn), strict=False, pooled=True)
        try:
            for i in range(100):
                app.enqueue("anything", {"producer": producer, "i": i})
        except psycopg.Error as exc:
            errors.append(f"{type(exc).__name__}: {exc}")
        finally:
            app.close()

    threads = [threading.Thread(target=produce, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert count(conn, "SELECT count(*) FROM pgjobs.jobs") == 400


@pytest.mark.parametrize("leader", ["direct leader-dsn", "lockless"])
def test_cron_fires_each_tick_once(dsn, conn, pooled_worker, leader: str) -> None:
    args = ["--poll-interval", "0.2", "--leader-interval", "0.5"]
    if leader == "direct leader-dsn":
        args += ["--leader-dsn", dsn]
    workers = [pooled_worker(CRON_APP, *args) for _ in range(2)]
    ticks = "SELECT count(DISTINCT meta->'cron'->>'tick') FROM pgjobs.jobs"
    wait_until(lambda: count(conn, ticks) >= 8, timeout=30, interval=0.2)
    stop(workers)
    repeated = conn.execute(
        "SELECT meta->'cron'->>'schedule', meta->'cron'->>'tick', count(*) FROM pgjobs.jobs"
        " GROUP BY 1, 2 HAVING count(*) > 1"
    ).fetchall()
    assert repeated == []
    # Both schedules fired, second after second.
    assert count(conn, "SELECT count(DISTINCT meta->'cron'->>'schedule') FROM pgjobs.jobs") == 2


@pytest.mark.parametrize("made_by", ["create_app", "the command line"])
def test_the_dashboard_answers_through_pgbouncer(
    dsn, bouncer: PgBouncer, tmp_path: Path, made_by: str
) -> None:
    pytest.importorskip(
        "starlette", reason="the web extra is not installed: pip install 'pgjobs[web]'"
    )
    import pgjobs.web
    from pgjobs.cli._dashboard import build
    from pgjobs.cli._main import build_parser
    from pgjobs.web._serve import serve_in_thread
    from tests.web.app import app as jobs_app
    from tests.web.conftest import ADMIN, ADMIN_TOKEN

    through = bouncer.dsn(dsn)
    jobs_app.dsn = dsn
    try:
        jobs_app.enqueue("noop", {"n": 1})
    finally:
        jobs_app.close()
    if made_by == "create_app":
        dashboard = pgjobs.web.create_app(
            jobs_app, dsn=through, tokens=f"admin:{ADMIN_TOKEN}", pooled=True
        )
    else:
        tokens = tmp_path / "tokens"
        tokens.write_text(f"admin:{ADMIN_TOKEN}\n")
        argv = ["dashboard", "tests.web.app:app", "--dsn", through, "--pooled"]
        dashboard, _, _ = build(build_parser().parse_args([*argv, "--tokens-file", str(tokens)]))
    server = serve_in_thread(dashboard)
    try:
        with httpx.Client(base_url=server.url.rstrip("/"), timeout=15) as client:
            # Each more than five times: psycopg would prepare a statement by then.
            for _ in range(6):
                for path in (
                    "/healthz",
                    "/",
                    "/jobs",
                    "/queues",
                    "/workers",
                    "/schedules",
                    "/api/v1/jobs",
                    "/api/v1/stats",
                    "/api/v1/queues",
                ):
                    answer = client.get(path, headers=ADMIN)
                    assert answer.status_code == 200, (path, answer.text[:500])
            listed = client.get("/api/v1/jobs", headers=ADMIN).json()
            assert "noop" in str(listed)
    finally:
        server.stop()


def test_without_pooled_a_stock_pgbouncer_refuses_the_dashboards_connections(
    dsn, bouncer: PgBouncer
) -> None:
    pytest.importorskip(
        "starlette", reason="the web extra is not installed: pip install 'pgjobs[web]'"
    )
    import pgjobs.web
    from pgjobs.web._serve import serve_in_thread
    from tests.web.app import app as jobs_app
    from tests.web.conftest import ADMIN, ADMIN_TOKEN

    direct_settings = pgjobs.web.create_app(
        jobs_app, dsn=bouncer.dsn(dsn), tokens=f"admin:{ADMIN_TOKEN}", connect_timeout=2
    )
    server = serve_in_thread(direct_settings)
    try:
        with httpx.Client(base_url=server.url.rstrip("/"), timeout=15) as client:
            assert client.get("/api/v1/stats", headers=ADMIN).status_code == 503
    finally:
        server.stop()
    assert "unsupported startup parameter: options" in bouncer.log()
