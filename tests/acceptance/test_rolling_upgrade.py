"""Rolling upgrades: `migrate` to the next revision while a worker of this code keeps working.

There is no revision after this code's yet, so each test makes one: a copy
of the migrations with one more, which `migrate` finds through
$PGJOBS_MIGRATIONS_DIR. The worker is a real `python -m pgjobs worker`
subprocess of this code, and it is observed only through the database, its
log, its health port and its exit code.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg.conninfo import make_conninfo

import pgjobs
from pgjobs import _migrate
from tests.apps.basic import record
from tests.conftest import REPO, WorkerProcess, wait_until

APP = "tests.apps.basic:app"
CURRENT = _migrate.SCHEMA_REVISION
NEXT = f"{int(CURRENT) + 1:04d}"

# An expand: it only adds (two nullable columns and a table), so it declares
# that code of the revision before it still works. It holds the exclusive
# lock on pgjobs.jobs_live for two seconds, as a longer migration would:
# the worker's claims and outcomes wait for it, and must not fail.
EXPAND = f'''"""A test's expand-only revision after {CURRENT}."""

from alembic import op

revision = "{NEXT}"
down_revision = "{CURRENT}"
oldest_code = "{CURRENT}"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ALTER TABLE pgjobs.jobs_live ADD COLUMN upgrade_note text")
    op.execute("ALTER TABLE pgjobs.job_history ADD COLUMN upgrade_note text")
    op.execute("CREATE TABLE pgjobs.upgrade_probe (id bigint PRIMARY KEY)")
    op.execute("SELECT pg_sleep(2)")


def downgrade() -> None:
    pass
'''

# A contract: code of the revision before it no longer works against it.
CONTRACT = f'''"""A test's contract revision after {CURRENT}."""

from alembic import op

revision = "{NEXT}"
down_revision = "{CURRENT}"
oldest_code = "{NEXT}"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("COMMENT ON TABLE pgjobs.jobs_live IS 'contracted by a test'")


def downgrade() -> None:
    pass
'''


@pytest.fixture
def upgrade_db(server_dsn: str) -> Iterator[str]:
    """A database of its own, at this code's revision, with the side-effect table of tests/apps."""
    name = f"pgjobs_upgrades_{secrets.token_hex(4)}"
    with psycopg.connect(server_dsn, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    dsn = make_conninfo(server_dsn, dbname=name)
    _migrate.upgrade(dsn)
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(
            "CREATE TABLE test_runs (id bigserial PRIMARY KEY, job_key text NOT NULL,"
            " pid integer NOT NULL, note text NOT NULL DEFAULT '', at timestamptz DEFAULT now())"
        )
    yield dsn
    with psycopg.connect(server_dsn, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def next_migrations(tmp_path: Path) -> Callable[[str], Path]:
    """A copy of the migrations with one more revision, whose source is given."""

    def make(source: str) -> Path:
        copy = tmp_path / "migrations"
        shutil.copytree(
            _migrate.migrations_dir(), copy, ignore=shutil.ignore_patterns("__pycache__")
        )
        (copy / "versions" / f"{NEXT}_next.py").write_text(source)
        return copy

    return make


@pytest.fixture
def workers(upgrade_db: str, tmp_path: Path) -> Iterator[Callable[..., WorkerProcess]]:
    started: list[WorkerProcess] = []

    def start(*args: str) -> WorkerProcess:
        log = tmp_path / f"worker-{len(started)}.log"
        worker = WorkerProcess(upgrade_db, APP, list(args), log)
        started.append(worker)
        return worker

    yield start
    for worker in started:
        worker.stop()


def migrate(dsn: str, migrations: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "PGJOBS_DSN": dsn,
        "PGJOBS_MIGRATIONS_DIR": str(migrations),
        "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
    }
    return subprocess.run(
        [sys.executable, "-m", "pgjobs", "migrate", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        timeout=120,
    )


def readiness(port: int) -> tuple[int, dict[str, Any]]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=5) as answer:
            return int(answer.status), json.loads(answer.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def events(worker: WorkerProcess) -> list[dict[str, object]]:
    return [json.loads(line) for line in worker.output().splitlines() if line.startswith("{")]


def health_port(worker: WorkerProcess) -> int:
    worker.wait_for_output("worker.health_serving")
    (port,) = [e["port"] for e in events(worker) if e["event"] == "worker.health_serving"]
    assert isinstance(port, int)
    return port


def revision(dsn: str) -> str | None:
    with psycopg.connect(dsn) as conn:
        return _migrate.current_revision(conn)


def test_a_worker_keeps_claiming_and_completing_while_the_next_revision_migrates(
    upgrade_db, next_migrations, workers
):
    worker = workers("--concurrency", "4", "--health-port", "0", "--health-host", "127.0.0.1")
    port = health_port(worker)
    wait_until(lambda: readiness(port)[0] == 200)
    record.app.dsn = upgrade_db
    enqueued: list[str] = []
    stop = threading.Event()

    def produce() -> None:
        # A steady stream, one job every 10 ms, before, during and after the migration.
        while not stop.is_set():
            key = f"k{len(enqueued)}"
            record.enqueue(key)
            enqueued.append(key)
            stop.wait(0.01)

    producer = threading.Thread(target=produce)
    producer.start()
    try:
        with psycopg.connect(upgrade_db, autocommit=True) as conn:
            wait_until(lambda: conn.execute("SELECT count(*) FROM test_runs").fetchone()[0] >= 50)
            (before,) = conn.execute("SELECT now()").fetchone()
            done = migrate(upgrade_db, next_migrations(EXPAND))
            (after,) = conn.execute("SELECT now()").fetchone()
            assert done.returncode == 0, done.stderr
            assert f"migrated from {CURRENT} to {NEXT}" in done.stdout
            # After the migration, the worker claims and completes new jobs.
            ran_after = "SELECT count(*) FROM test_runs WHERE at > %s"
            wait_until(lambda: conn.execute(ran_after, [after]).fetchone()[0] >= 50)
    finally:
        stop.set()
        producer.join()
        record.app.close()
    assert revision(upgrade_db) == NEXT
    with psycopg.connect(upgrade_db, autocommit=True) as conn:
        every = len(enqueued)
        wait_until(
            lambda: (
                conn.execute(
                    "SELECT count(*) FROM pgjobs.jobs WHERE status = 'succeeded'"
                ).fetchone()[0]
                == every
            ),
            timeout=60,
        )
        # Jobs were enqueued while the migration held its lock: they waited, and ran.
        (during,) = conn.execute(
            "SELECT count(*) FROM pgjobs.jobs WHERE created_at BETWEEN %s AND %s", [before, after]
        ).fetchone()
        assert during > 0
        # Each job ran exactly once, at its first attempt, and none failed or was lost.
        runs = conn.execute("SELECT count(*), count(DISTINCT job_key) FROM test_runs").fetchone()
        assert runs == (every, every)
        assert conn.execute(
            "SELECT count(*) FROM pgjobs.jobs WHERE attempts <> 1 OR errors <> '[]'"
        ).fetchone() == (0,)
    # No claim or completion failed: the worker logged no warning and no error.
    troubles = [e for e in events(worker) if e.get("level") in {"warning", "error", "critical"}]
    assert troubles == []
    # Its readiness names the new revision, inside its window (once its cached check expires).
    wait_until(lambda: readiness(port)[1]["checks"]["schema"].get("revision") == NEXT)
    status, body = readiness(port)
    assert status == 200
    assert body["checks"]["schema"] == {"ok": True, "state": "compatible", "revision": NEXT}
    worker.signal(signal.SIGTERM)
    assert worker.wait() == 0


def test_a_contract_revision_is_refused_while_older_workers_run_and_they_cannot_start_on_it(
    upgrade_db, next_migrations, workers
):
    worker = workers("--health-port", "0", "--health-host", "127.0.0.1")
    port = health_port(worker)
    worker.wait_for_output("worker.started")
    migrations = next_migrations(CONTRACT)

    refused = migrate(upgrade_db, migrations)
    assert refused.returncode == 2
    assert refused.stdout == ""
    message = refused.stderr
    assert f"migrating from {CURRENT} to {NEXT} would break 1 running worker(s)" in message
    assert f"works with code of revision {NEXT} or newer" in message
    # The worker, as pgjobs.workers has it: host, pid, package version, code revision.
    assert f"pid {worker.pid}): pgjobs {pgjobs.__version__}, code revision {CURRENT}" in message
    assert "--force" in message
    assert revision(upgrade_db) == CURRENT  # nothing changed

    forced = migrate(upgrade_db, migrations, "--force")
    assert forced.returncode == 0, forced.stderr
    assert "pgjobs: warning: migrating from" in forced.stderr
    assert f"pid {worker.pid})" in forced.stderr
    assert revision(upgrade_db) == NEXT
    # The running worker's readiness now fails, saying why.
    wait_until(lambda: readiness(port)[0] == 503, timeout=30)
    schema = readiness(port)[1]["checks"]["schema"]
    assert schema["state"] == "incompatible"
    assert f"this code is revision {CURRENT}" in schema["error"]
    worker.signal(signal.SIGTERM)
    assert worker.wait() == 0

    # A worker of this code refuses to start on it, naming both revisions and the fix.
    late = workers()
    assert late.wait() == 2
    output = late.output()
    assert f"the pgjobs schema is at revision {NEXT}" in output
    assert f"works with code of revision {NEXT} or newer" in output
    assert f"this code is revision {CURRENT}" in output
    assert "Upgrade the pgjobs package on this host" in output
