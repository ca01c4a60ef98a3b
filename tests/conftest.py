"""Shared fixtures: a real PostgreSQL (local or embedded) and a fresh database per run.

Order of preference for the server:
1. $PGJOBS_TEST_DSN;
2. postgresql://postgres@127.0.0.1:5432/postgres, when it answers;
3. an embedded PostgreSQL from the `pgserver` package, started here.

Each test session creates its own database, migrates it, and drops it at the
end, so concurrent runs never share state. Each test starts from empty tables.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
import structlog
from psycopg.conninfo import make_conninfo

from pgjobs import _migrate

REPO = Path(__file__).resolve().parent.parent
LOCAL_SERVER = "postgresql://postgres@127.0.0.1:5432/postgres"

#: The layers left out of the fast lane (`pytest -m "not slow"`): their tests
#: start worker, CLI or dashboard processes, a browser, or PostgreSQL clusters,
#: and took twice as long as unit and integration together. CI runs them all.
SLOW_LAYERS = ("acceptance", "chaos", "web")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test of the SLOW_LAYERS as slow."""
    tests = REPO / "tests"
    for item in items:
        layer = item.path.relative_to(tests).parts[0] if item.path.is_relative_to(tests) else ""
        if layer in SLOW_LAYERS:
            item.add_marker(pytest.mark.slow)


def _reachable(dsn: str) -> bool:
    try:
        psycopg.connect(dsn, connect_timeout=3).close()
    except psycopg.OperationalError:
        return False
    return True


@pytest.fixture(scope="session")
def server_dsn() -> Iterator[str]:
    """An admin DSN for a PostgreSQL server the tests may create databases on."""
    explicit = os.environ.get("PGJOBS_TEST_DSN")
    if explicit:
        yield explicit
        return
    if _reachable(LOCAL_SERVER):
        yield LOCAL_SERVER
        return
    from pgjobs._embedded import EmbeddedPostgres

    # No server here: start the embedded one, as a user without PostgreSQL would.
    # Its data lives in its own temp dir, not under pytest's: the server runs as
    # an unprivileged user, and any pytest run resets its base dir to mode 0700.
    with EmbeddedPostgres() as embedded:
        yield embedded.dsn


@pytest.fixture(scope="session")
def database(server_dsn: str) -> Iterator[str]:
    """A freshly created and migrated database for this test session."""
    name = f"pgjobs_test_{os.getpid()}_{secrets.token_hex(3)}"
    with psycopg.connect(server_dsn, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    dsn = make_conninfo(server_dsn, dbname=name)
    _migrate.upgrade(dsn)
    yield dsn
    with psycopg.connect(server_dsn, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def dsn(database: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """The session database with empty pgjobs tables; also exported as PGJOBS_DSN."""
    with psycopg.connect(database, autocommit=True) as conn:
        conn.execute(
            "TRUNCATE pgjobs.jobs_live, pgjobs.job_history, pgjobs.workers, pgjobs.queues,"
            " pgjobs.result_waiters, pgjobs.queue_key_rates, pgjobs.job_dependencies,"
            " pgjobs.schedules, pgjobs.webhooks, pgjobs.task_breakers, pgjobs.finished_per_minute,"
            " pgjobs.finished_per_hour RESTART IDENTITY"
        )
        # A test may have dropped history partitions; today's are always there.
        conn.execute("SELECT pgjobs.create_history_partitions()")
        # The side-effect table of tests/apps: one row per handler run.
        conn.execute(
            "CREATE TABLE IF NOT EXISTS test_runs (id bigserial PRIMARY KEY, job_key text NOT NULL,"
            " pid integer NOT NULL, note text NOT NULL DEFAULT '', at timestamptz DEFAULT now())"
        )
        conn.execute("TRUNCATE test_runs")
    monkeypatch.setenv("PGJOBS_DSN", database)
    return database


@pytest.fixture
def conn(dsn: str) -> Iterator[psycopg.Connection[tuple[object, ...]]]:
    """An autocommit connection for inspecting what tests did."""
    with psycopg.connect(dsn, autocommit=True) as connection:
        yield connection


class WorkerProcess:
    """`python -m pgjobs worker ...` as a real subprocess; its output goes to a log file."""

    def __init__(self, dsn: str, app: str, args: list[str], log: Path) -> None:
        env = {
            **os.environ,
            "PGJOBS_DSN": dsn,
            "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
            "PYTHONUNBUFFERED": "1",
        }
        self.log = log
        self._out = log.open("wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "pgjobs", "--log-format", "json", "worker", app, *args],
            stdout=self._out,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=REPO,
        )

    @property
    def pid(self) -> int:
        """The worker's process id."""
        return self.proc.pid

    def output(self) -> str:
        """Everything the worker printed so far."""
        return self.log.read_text(errors="replace")

    def wait_for_output(self, text: str, timeout: float = 20) -> None:
        """Block until the worker has printed `text`."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if text in self.output():
                return
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        raise AssertionError(f"worker never printed {text!r}; output:\n{self.output()[-3000:]}")

    def signal(self, signum: int) -> None:
        """Send a signal to the worker."""
        self.proc.send_signal(signum)

    def wait(self, timeout: float = 30) -> int:
        """Wait for the worker to exit; returns its exit code."""
        return self.proc.wait(timeout)

    def stop(self) -> None:
        """Kill the worker if it is still running."""
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        self._out.close()


@pytest.fixture
def start_worker(dsn: str, tmp_path: Path) -> Iterator[object]:
    """Start worker subprocesses: `start_worker("tests.apps.basic:app", "--concurrency", "5")`."""
    started: list[WorkerProcess] = []

    def start(app: str, *args: str) -> WorkerProcess:
        worker = WorkerProcess(dsn, app, list(args), tmp_path / f"worker-{len(started)}.log")
        started.append(worker)
        return worker

    yield start
    for worker in started:
        worker.stop()


def wait_until(predicate: object, timeout: float = 20, interval: float = 0.05) -> None:
    """Poll `predicate()` until it is true; fail the test after `timeout` seconds."""
    assert callable(predicate)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout}s")


@pytest.fixture(autouse=True)
def _structlog_left_unconfigured() -> Iterator[None]:
    """Leave structlog as each test found it: unconfigured, pgjobs logs to stderr.

    structlog.testing.capture_logs, and any test that restores a saved
    configuration, marks structlog as configured when it puts things back;
    every later test in the session would then lose pgjobs' stderr output.
    """
    configured = structlog.is_configured()
    yield
    if not configured and structlog.is_configured():
        structlog.reset_defaults()
