"""A throwaway PostgreSQL cluster per test, which the chaos scenarios stop, kill and restart.

The shared server (tests/conftest.py) must never be stopped, so each chaos
test gets a cluster of its own: the embedded `pgserver` package's binaries,
a data directory copied from a template made once per session (initdb and
migrate cost seconds; a copy costs milliseconds), TCP on 127.0.0.1 and a free
port, so that workers reconnect by host and port as they would in production.

PostgreSQL refuses to run as root; as root, the cluster runs as the
`pgserver` system user, which the pgserver package creates for the same
reason.
"""

from __future__ import annotations

import contextlib
import json
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from pgjobs import _migrate
from pgjobs._embedded import EmbeddedPostgres
from tests.conftest import WorkerProcess

APP = "tests.chaos.app:app"
DATABASE = "chaos"
#: Worker flags that make the chaos quick: dead workers are noticed within
#: about two seconds, a dead leader is replaced within one.
FAST = [
    "--heartbeat-interval",
    "0.3",
    "--stale-after",
    "2",
    "--rescue-interval",
    "0.5",
    "--leader-interval",
    "0.5",
    "--poll-interval",
    "0.5",
]
_SETTINGS = """
listen_addresses = '127.0.0.1'
max_connections = 200
shared_buffers = 64MB
# The faults here are process kills, not power loss: WAL is still written to
# the OS at every commit, so a killed server recovers everything committed.
fsync = off
log_min_messages = warning
log_connections = off
log_line_prefix = '%m [%p] '
"""


def _bin(name: str) -> str:
    return str(EmbeddedPostgres("/nonexistent").bin_dir / name)


def _run_as() -> str | None:
    """The system user PostgreSQL runs as: `pgserver` when we are root, else ourselves."""
    if os.geteuid() != 0:
        return None
    try:
        pwd.getpwnam("pgserver")
    except KeyError:
        useradd = shutil.which("useradd") or "/usr/sbin/useradd"
        subprocess.run([useradd, "-s", "/bin/sh", "pgserver"], check=True, timeout=30)
    return "pgserver"


def _chown(path: Path, user: str | None) -> None:
    if user is not None:
        entry = pwd.getpwnam(user)
        os.chown(path, entry.pw_uid, entry.pw_gid)


def free_port() -> int:
    """A TCP port nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _children(pid: int) -> list[int]:
    """Direct children of `pid` (the postmaster's backends and helpers), from /proc."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # The command name is in parentheses and may hold spaces: split after it.
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[1]) == pid:
            found.append(int(entry.name))
    return found


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie still answers kill(0) until reaped; count it as dead.
    with contextlib.suppress(OSError):
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    return False


class Cluster:
    """One PostgreSQL cluster in `base`, listening on 127.0.0.1:`port`.

    Args:
        base: a directory owned by `user`, holding `data/` and `server.log`.
        port: the TCP port.
        user: the system user the server runs as (None: the current one).
    """

    def __init__(self, base: Path, port: int, user: str | None) -> None:
        self.base = base
        self.data = base / "data"
        self.logfile = base / "server.log"
        self.port = port
        self.user = user
        self.dsn = f"postgresql://postgres@127.0.0.1:{port}/{DATABASE}"
        self.admin_dsn = f"postgresql://postgres@127.0.0.1:{port}/postgres"

    def _pg_ctl(self, *args: str, timeout: float = 60) -> None:
        result = subprocess.run(
            [_bin("pg_ctl"), "-D", str(self.data), *args],
            user=self.user,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if result.returncode != 0:
            raise RuntimeError(
                f"pg_ctl {' '.join(args)} failed ({result.returncode}): {result.stderr}\n"
                f"server log:\n{self.log()[-3000:]}"
            )

    def start(self) -> float:
        """Start the server and wait until it accepts connections; returns the seconds taken."""
        began = time.monotonic()
        self._pg_ctl(
            "-l",
            str(self.logfile),
            "-w",
            "-t",
            "60",
            "-o",
            f"-p {self.port} -c unix_socket_directories={self.base}",
            "start",
        )
        return time.monotonic() - began

    def stop(self, mode: str = "fast") -> None:
        """Stop the server: `fast` rolls back and disconnects every session, `immediate` aborts."""
        self._pg_ctl("-m", mode, "-w", "-t", "60", "stop")

    def restart(self, mode: str = "fast", down_for: float = 0.0) -> float:
        """Stop, stay down `down_for` seconds, start; returns the seconds from stop to ready."""
        began = time.monotonic()
        self.stop(mode)
        time.sleep(down_for)
        self.start()
        return time.monotonic() - began

    @property
    def postmaster_pid(self) -> int | None:
        """The running postmaster's pid, from postmaster.pid; None when stopped."""
        try:
            return int((self.data / "postmaster.pid").read_text().splitlines()[0])
        except (OSError, ValueError, IndexError):
            return None

    def kill9(self) -> None:
        """SIGKILL the postmaster, as the OOM killer would, and wait for its orphans to go.

        Backends notice their postmaster's death within moments and exit; the
        next start finds the data directory not shut down and runs crash
        recovery. Backends still alive after 10 s are killed too, because a
        new postmaster refuses to start while the old shared memory is in use.
        """
        pid = self.postmaster_pid
        assert pid is not None, "the server is not running"
        children = _children(pid)
        os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and any(_alive(p) for p in [pid, *children]):
            time.sleep(0.05)
        for child in children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(child, signal.SIGKILL)

    def is_up(self) -> bool:
        """Whether the server accepts connections now."""
        try:
            psycopg.connect(self.admin_dsn, connect_timeout=2).close()
        except psycopg.OperationalError:
            return False
        return True

    def log(self) -> str:
        """The server's log so far."""
        try:
            return self.logfile.read_text(errors="replace")
        except OSError:
            return ""

    def connect(self, **kwargs: Any) -> psycopg.Connection[Any]:
        """An autocommit connection to the test database."""
        return psycopg.connect(self.dsn, autocommit=True, **kwargs)


def _new_base(user: str | None) -> Path:
    # Under /tmp, not pytest's tmp_path: the server's user must be able to
    # reach it, and pytest's directories are private to us.
    base = Path(tempfile.mkdtemp(prefix="pgjobs-chaos-"))
    _chown(base, user)
    return base


@pytest.fixture(scope="session")
def cluster_template() -> Iterator[Path]:
    """A stopped cluster with the test database migrated, to copy for each test."""
    user = _run_as()
    base = _new_base(user)
    subprocess.run(
        [
            _bin("initdb"),
            "-D",
            str(base / "data"),
            "-U",
            "postgres",
            "--auth=trust",
            "-E",
            "utf8",
            "-N",
        ],
        user=user,
        check=True,
        capture_output=True,
        timeout=120,
    )
    with (base / "data" / "postgresql.conf").open("a") as conf:
        conf.write(_SETTINGS)
    cluster = Cluster(base, free_port(), user)
    cluster.start()
    try:
        with psycopg.connect(cluster.admin_dsn, autocommit=True) as admin:
            admin.execute(f"CREATE DATABASE {DATABASE}")
        _migrate.upgrade(cluster.dsn)
        with cluster.connect() as conn:
            conn.execute(
                "CREATE TABLE test_runs (id bigserial PRIMARY KEY, job_key text NOT NULL,"
                " pid integer NOT NULL, note text NOT NULL DEFAULT '',"
                " at timestamptz DEFAULT clock_timestamp())"
            )
    finally:
        cluster.stop()
    (base / "server.log").unlink(missing_ok=True)
    yield base
    shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def cluster(cluster_template: Path) -> Iterator[Cluster]:
    """A running throwaway cluster of this test's own, removed afterwards."""
    user = _run_as()
    base = _new_base(user)
    # cp -a keeps the owner and the 0700 mode PostgreSQL insists on.
    cp = shutil.which("cp") or "/bin/cp"
    subprocess.run(
        [cp, "-a", str(cluster_template / "data"), str(base / "data")], check=True, timeout=60
    )
    made = Cluster(base, free_port(), user)
    made.start()
    yield made
    with contextlib.suppress(Exception):
        if made.postmaster_pid is not None:
            made.stop("immediate")
    with contextlib.suppress(Exception):
        if made.postmaster_pid is not None:
            made.kill9()
    shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def workers(cluster: Cluster, tmp_path: Path) -> Iterator[Any]:
    """Start chaos workers against the cluster: `workers("--concurrency", "8")`.

    Every worker started is SIGKILLed at teardown if still running.
    """
    started: list[WorkerProcess] = []

    def start(*args: str) -> WorkerProcess:
        worker = WorkerProcess(cluster.dsn, APP, list(args), tmp_path / f"w{len(started)}.log")
        started.append(worker)
        return worker

    start.started = started  # type: ignore[attr-defined]
    yield start
    for worker in started:
        worker.stop()


def events(worker: WorkerProcess) -> list[dict[str, Any]]:
    """The worker's JSON log lines, parsed."""
    found = []
    for line in worker.output().splitlines():
        if line.startswith("{"):
            with contextlib.suppress(ValueError):
                found.append(json.loads(line))
    return found


def scalar(conn: psycopg.Connection[Any], sql: str, *params: object) -> Any:
    """The first column of the first row."""
    row = conn.execute(sql, params).fetchone()
    assert row is not None
    return row[0]


def enqueue_records(dsn: str, n: int, *, work: float = 0.0, prefix: str = "k") -> None:
    """Enqueue `n` chaos.record jobs through the public bulk API, 1000 per round trip."""
    from tests.chaos.app import app, record

    app.dsn = dsn
    try:
        specs = [record.job(f"{prefix}{i}", work) for i in range(n)]
        for start in range(0, n, 1000):
            app.enqueue_many(specs[start : start + 1000])
    finally:
        app.close()


# -- what every scenario proves, and the numbers it reports --------------------

_REPORT: list[tuple[str, dict[str, Any]]] = []


@pytest.fixture
def report(request: pytest.FixtureRequest) -> Any:
    """Record a scenario's numbers; they are printed in pytest's terminal summary."""

    def add(**numbers: Any) -> None:
        _REPORT.append((request.node.name, numbers))

    return add


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """Print every chaos scenario's numbers at the end of the run."""
    if not _REPORT:
        return
    terminalreporter.section("chaos numbers")
    for name, numbers in _REPORT:
        terminalreporter.write_line(f"{name}: {json.dumps(numbers, default=str)}")


def assert_nothing_lost(
    conn: psycopg.Connection[Any], keys: set[str], killed_pids: set[int] | None = None
) -> dict[str, int]:
    """Every job succeeded, each ran at least once, and every extra run is explained.

    A job runs again only after an attempt that did not end in success: each
    extra run has an entry in the job's error list (a `pgjobs.WorkerLost`
    from the rescuer, or the handler's own error), and the job was claimed at
    least as many times as it ran. With `killed_pids` (only workers were
    killed), the stronger claim: every extra run was written by a process
    that was SIGKILLed, and is matched by a WorkerLost entry.

    Returns:
        Counts: jobs, runs, duplicates (extra runs), duplicated_jobs.
    """
    statuses = dict(conn.execute("SELECT status::text, count(*) FROM pgjobs.jobs GROUP BY 1"))
    assert statuses == {"succeeded": len(keys)}, statuses
    rows = conn.execute(
        """
        SELECT j.args->>'key', j.attempts, jsonb_array_length(j.errors),
               (SELECT count(*) FROM jsonb_array_elements(j.errors) e
                 WHERE e->>'type' = 'pgjobs.WorkerLost'),
               coalesce(array_agg(r.pid ORDER BY r.id) FILTER (WHERE r.id IS NOT NULL), '{}')
        FROM pgjobs.jobs j LEFT JOIN test_runs r ON r.job_key = j.args->>'key'
        GROUP BY j.id, j.args, j.attempts, j.errors
        """
    ).fetchall()
    assert {key for key, *_ in rows} == keys
    runs = duplicates = duplicated_jobs = 0
    for key, attempts, errors, lost, pids in rows:
        assert pids, f"job {key} succeeded but its handler never ran"
        runs += len(pids)
        extra = len(pids) - 1
        assert attempts >= len(pids), f"job {key} ran {len(pids)} times in {attempts} attempts"
        if not extra:
            continue
        duplicates += extra
        duplicated_jobs += 1
        assert errors >= extra, f"job {key} ran {len(pids)} times with {errors} failed attempts"
        if killed_pids is not None:
            by_killed = sum(pid in killed_pids for pid in pids)
            assert by_killed >= extra, f"job {key} ran {len(pids)} times, pids {pids}"
            assert lost >= extra, f"job {key} ran {len(pids)} times, {lost} WorkerLost"
    strays = scalar(conn, "SELECT count(*) FROM test_runs WHERE job_key <> ALL(%s)", list(keys))
    assert strays == 0
    assert scalar(conn, "SELECT count(*) FROM pgjobs.jobs_live WHERE worker_id IS NOT NULL") == 0
    return {
        "jobs": len(keys),
        "runs": runs,
        "duplicates": duplicates,
        "duplicated_jobs": duplicated_jobs,
    }
