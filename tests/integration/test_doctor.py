"""`pgjobs doctor` against a real database: a fresh one is healthy, each planted fault is found."""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator

import psycopg
import pytest
from psycopg.conninfo import make_conninfo

from pgjobs import _doctor, _migrate
from pgjobs._names import APP_NAME_LISTENER, with_pid
from pgjobs.cli._terminal import connection
from pgjobs.errors import SchemaVersionError
from tests.conftest import REPO

#: Thresholds low enough that a transaction held for a second crosses them.
QUICK = _doctor.Limits(xmin_warn_seconds=0.5, idle_warn_seconds=0.5)


def _diagnose(dsn: str, limits: _doctor.Limits | None = None) -> list[_doctor.Finding]:
    with connection(dsn) as conn:
        return _doctor.diagnose(conn, limits or _doctor.Limits())


def _by_check(findings: list[_doctor.Finding]) -> dict[str, _doctor.Finding]:
    return {f.check: f for f in findings}


def _server_autovacuum(conn: psycopg.Connection[tuple[object, ...]]) -> bool:
    row = conn.execute("SELECT current_setting('autovacuum') = 'on'").fetchone()
    assert row is not None
    return bool(row[0])


def test_a_fresh_database_is_healthy(dsn, conn):
    findings = _diagnose(dsn)
    not_ok = {f.check: f for f in findings if f.verdict != "ok"}
    # The test server may run with autovacuum off (it is then rightly a failure).
    if not _server_autovacuum(conn):
        assert not_ok.pop("autovacuum").verdict == "fail"
    assert not_ok == {}
    checks = {f.check for f in findings}
    for check in (
        "migrations",
        "xmin",
        "idle in transaction",
        "notification queue",
        "connections",
        "history",
    ):
        assert check in checks
    assert "dead rows jobs_live" in checks
    assert "bloat jobs_live_fetch_idx" in checks


@pytest.fixture
def held(dsn) -> Iterator[int]:
    """Another session with a transaction that has an xid and stays open; its pid."""
    with psycopg.connect(dsn) as other:
        other.execute("SELECT txid_current()")
        row = other.execute("SELECT pg_backend_pid()").fetchone()
        assert row is not None
        time.sleep(1)  # older than QUICK's thresholds
        yield int(row[0])
        other.rollback()


def test_a_held_transaction_holds_back_xmin(dsn, held):
    xmin = _by_check(_diagnose(dsn, QUICK))["xmin"]
    assert xmin.verdict == "warn"
    assert f"pid {held} " in xmin.detail
    assert f"pg_terminate_backend({held})" in xmin.fix
    # With the default thresholds a second is nothing to worry about.
    assert _by_check(_diagnose(dsn))["xmin"].verdict == "ok"


def test_an_idle_transaction_is_reported(dsn, held):
    idle = _by_check(_diagnose(dsn, QUICK))["idle in transaction"]
    assert idle.verdict == "warn"
    assert idle.value == 1
    assert f"pid {held} " in idle.detail


def test_dead_rows_of_the_jobs_table_are_flagged(dsn, conn):
    conn.execute("ALTER TABLE pgjobs.jobs_live SET (autovacuum_enabled = false)")
    try:
        conn.execute(
            "INSERT INTO pgjobs.jobs_live (task)"
            " SELECT 'doctor.bloat' FROM generate_series(1, 30000)"
        )
        conn.execute("DELETE FROM pgjobs.jobs_live")
        conn.execute("SELECT pg_stat_force_next_flush()")
        findings = _by_check(_diagnose(dsn))
        dead = findings["dead rows jobs_live"]
        assert dead.verdict == "fail"
        assert dead.value == 1.0
        assert "30000 dead" in dead.detail
        assert "VACUUM pgjobs.jobs" in dead.fix
        autovacuum = findings["autovacuum"]
        assert autovacuum.verdict == "fail"
        assert "autovacuum_enabled=false" in str(autovacuum.value)
    finally:
        conn.execute("ALTER TABLE pgjobs.jobs_live RESET (autovacuum_enabled)")
        conn.execute("VACUUM pgjobs.jobs_live")


def test_reset_autovacuum_parameters_are_flagged(dsn, conn):
    conn.execute("ALTER TABLE pgjobs.jobs_live RESET (autovacuum_vacuum_scale_factor)")
    try:
        autovacuum = _by_check(_diagnose(dsn))["autovacuum"]
        if _server_autovacuum(conn):
            assert autovacuum.verdict == "warn"
            assert "autovacuum_vacuum_scale_factor = 0.01" in autovacuum.fix
        else:
            assert autovacuum.verdict == "fail"
    finally:
        conn.execute("ALTER TABLE pgjobs.jobs_live SET (autovacuum_vacuum_scale_factor = 0.01)")


def test_a_due_job_on_a_queue_no_live_worker_serves(dsn, conn):
    conn.execute(
        "INSERT INTO pgjobs.workers (host, pid, queues, concurrency)"
        " VALUES ('h', 1, '{default}', 1)"
    )
    conn.execute("INSERT INTO pgjobs.jobs (task, queue) VALUES ('t', 'default'), ('t', 'orphan')")
    # A queue whose only worker is long silent is not served either.
    conn.execute(
        "INSERT INTO pgjobs.workers (host, pid, queues, concurrency, last_seen_at)"
        " VALUES ('h', 2, '{stale}', 1, now() - interval '1 hour')"
    )
    conn.execute("INSERT INTO pgjobs.jobs (task, queue) VALUES ('t', 'stale')")
    findings = _by_check(_diagnose(dsn))
    assert findings["queue default"].verdict == "ok"
    for queue in ("orphan", "stale"):
        unserved = findings[f"queue {queue}"]
        assert unserved.verdict == "fail"
        assert "no live worker serves" in unserved.detail
        assert f"--queues {queue}" in unserved.fix
    # A paused queue's jobs are meant to wait.
    conn.execute("INSERT INTO pgjobs.queues (name, paused) VALUES ('orphan', true)")
    assert _by_check(_diagnose(dsn))["queue orphan"].verdict == "ok"


def test_a_job_running_on_a_dead_worker(dsn, conn):
    conn.execute(
        "INSERT INTO pgjobs.workers (id, host, pid, queues, concurrency, last_seen_at)"
        " VALUES (7, 'h', 1, '{default}', 1, now() - interval '10 minutes')"
    )
    conn.execute(
        "INSERT INTO pgjobs.jobs (id, task, status, worker_id, started_at) OVERRIDING SYSTEM VALUE"
        " VALUES (41, 't', 'running', 7, now()), (42, 't', 'running', 999, now())"
    )
    orphans = _by_check(_diagnose(dsn))["running on dead workers"]
    assert orphans.verdict == "warn"
    assert orphans.value == 2
    assert "41, 42" in orphans.detail


def test_a_waiting_worker_without_its_listener_session(dsn, conn):
    conn.execute(
        "INSERT INTO pgjobs.workers (host, pid, queues, concurrency, awaiting_work)"
        " VALUES ('h', 999999, '{default}', 1, true)"
    )
    listeners = _by_check(_diagnose(dsn))["listeners"]
    assert listeners.verdict == "warn"
    assert "pid 999999" in listeners.detail
    # Its listener connected (as a worker names it) makes it whole.
    name = with_pid(APP_NAME_LISTENER, 999999)
    with psycopg.connect(dsn, application_name=name):
        assert _by_check(_diagnose(dsn))["listeners"].verdict == "ok"


def test_growing_failures_are_flagged(dsn, conn):
    conn.execute(
        "INSERT INTO pgjobs.jobs (task, status, finished_at)"
        " SELECT 't', 'failed', now() - interval '1 minute' FROM generate_series(1, 12)"
    )
    failed = _by_check(_diagnose(dsn))["failed jobs"]
    assert failed.verdict == "warn"
    assert failed.value == 12


@pytest.fixture
def scratch_db(server_dsn) -> Iterator[str]:
    name = f"pgjobs_doctor_{secrets.token_hex(4)}"
    with psycopg.connect(server_dsn, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    yield make_conninfo(server_dsn, dbname=name)
    with psycopg.connect(server_dsn, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_a_pending_migration_fails(scratch_db):
    # The revision before the head: the newest migration file's predecessor
    # (numbers can skip while branches with migrations of their own are merged).
    versions = sorted(p.name[:4] for p in (REPO / "migrations" / "versions").glob("[0-9]*.py"))
    previous = versions[-2]
    _migrate.upgrade(scratch_db, previous)
    migrations = _by_check(_diagnose(scratch_db))["migrations"]
    assert migrations.verdict == "fail"
    assert migrations.value == previous
    assert "python -m pgjobs migrate" in migrations.fix


def test_a_database_without_the_schema_is_one_error(scratch_db):
    with pytest.raises(SchemaVersionError, match="no pgjobs schema"):
        _diagnose(scratch_db)


def test_finished_jobs_left_in_the_live_table_and_a_missing_partition_are_named(dsn, conn):
    """An upgrade leaves finished jobs live for the leader to move; one with no
    finished_at stays there; a status with no partition for now fails."""
    conn.execute(
        "INSERT INTO pgjobs.jobs_live (task, status, finished_at) VALUES ('t', 'succeeded', now())"
    )
    history = _by_check(_diagnose(dsn))["history"]
    assert (history.verdict, history.value) == ("warn", 1)
    assert "python -m pgjobs migrate" in history.fix
    conn.execute("INSERT INTO pgjobs.jobs_live (task, status) VALUES ('t', 'failed')")
    history = _by_check(_diagnose(dsn))["history"]
    assert (history.verdict, history.value) == ("warn", 1)
    assert "finished_at = now()" in history.fix
    (current,) = conn.execute(
        "SELECT partition::text FROM pgjobs.history_partitions"
        " WHERE status = 'cancelled' AND from_at <= now() AND now() < to_at"
    ).fetchone()
    conn.execute(f"DROP TABLE {current}")
    history = _by_check(_diagnose(dsn))["history"]
    assert (history.verdict, history.value) == ("warn", 2)
    assert "create_history_partitions" in history.fix
