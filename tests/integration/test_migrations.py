"""Migrations: idempotent, safe concurrently, printable for a DBA, and shipped in the wheel."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psycopg
import pytest
from psycopg.conninfo import make_conninfo

from pgjobs import _migrate, _window
from pgjobs._names import WAKE_CHANNEL
from pgjobs._window import Schema
from pgjobs.errors import IncompatibleWorkersError
from tests.conftest import REPO


@pytest.fixture
def empty_db(server_dsn):
    name = f"pgjobs_migrate_{secrets.token_hex(4)}"
    with psycopg.connect(server_dsn, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    yield make_conninfo(server_dsn, dbname=name)
    with psycopg.connect(server_dsn, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_migrate_twice_is_a_no_op(empty_db):
    assert _migrate.upgrade(empty_db) == (None, _migrate.SCHEMA_REVISION)
    assert _migrate.upgrade(empty_db) == (_migrate.SCHEMA_REVISION, _migrate.SCHEMA_REVISION)
    with psycopg.connect(empty_db) as conn:
        (table,) = conn.execute("SELECT to_regclass('pgjobs.alembic_version')::text").fetchone()
        assert table == "pgjobs.alembic_version"
        # The host application's own Alembic table is untouched.
        assert conn.execute("SELECT to_regclass('public.alembic_version')").fetchone() == (None,)


@pytest.mark.slow  # three migrate processes
def test_concurrent_migrate_processes_wait_for_each_other(empty_db):
    env = {**os.environ, "PGJOBS_DSN": empty_db, "PYTHONPATH": str(REPO)}
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "pgjobs", "migrate"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        for _ in range(3)
    ]
    outputs = [proc.communicate(timeout=120) for proc in procs]
    assert [proc.returncode for proc in procs] == [0, 0, 0], outputs
    said = sorted("migrated from nothing" in out for out, _ in outputs)
    # Exactly one migrator did the work; the others waited and found it done.
    assert said == [False, False, True]


def test_threads_of_one_process_can_migrate_at_once(empty_db):
    with ThreadPoolExecutor(3) as pool:
        results = list(pool.map(lambda _: _migrate.upgrade(empty_db), range(3)))
    current = _migrate.SCHEMA_REVISION
    assert sorted(str(before) for before, _ in results) == [current, current, "None"]


def test_offline_sql_is_the_ddl(capsys):
    sql = _migrate.offline_sql()
    assert "CREATE SCHEMA IF NOT EXISTS pgjobs" in sql
    assert "CREATE TABLE pgjobs.jobs" in sql
    assert "CREATE TABLE pgjobs.alembic_version" in sql
    assert sql.rstrip().endswith("COMMIT;")


def test_offline_sql_applies_cleanly_with_psql_semantics(empty_db):
    with psycopg.connect(empty_db, autocommit=True) as conn:
        conn.execute(_migrate.offline_sql().encode())
        (version,) = conn.execute("SELECT version_num FROM pgjobs.alembic_version").fetchone()
    assert version == _migrate.SCHEMA_REVISION


def test_a_database_from_a_newer_pgjobs_is_refused(empty_db):
    _migrate.upgrade(empty_db)
    with psycopg.connect(empty_db, autocommit=True) as conn:
        conn.execute("UPDATE pgjobs.alembic_version SET version_num = '9999'")
    with pytest.raises(Exception, match="newer pgjobs"):
        _migrate.upgrade(empty_db)


@pytest.mark.slow
def test_non_editable_wheel_ships_migrations_and_migrates(empty_db, tmp_path: Path):
    wheels = tmp_path / "wheels"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(wheels), str(REPO)],
        check=True,
        timeout=300,
    )
    (wheel,) = wheels.glob("pgjobs-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "pgjobs/_migrations/env.py" in names
    assert any(n.startswith("pgjobs/_migrations/versions/0001") for n in names)
    assert "pgjobs/sql/claim.sql" in names
    assert "pgjobs/py.typed" in names
    target = tmp_path / "site"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--no-deps",
            "-q",
            "--target",
            str(target),
            str(wheel),
        ],
        check=True,
        timeout=300,
    )
    # Run from an unrelated directory, with the installed copy first on the path,
    # so the repository's own migrations/ folder cannot be what is used.
    env = {**os.environ, "PYTHONPATH": str(target), "PGJOBS_DSN": empty_db}
    where = subprocess.run(
        [
            sys.executable,
            "-c",
            "import pgjobs, pgjobs._migrate as m; print(pgjobs.__file__);"
            " print(m.migrations_dir())",
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=60,
        check=True,
    ).stdout.split()
    assert where[0].startswith(str(target))
    assert where[1] == str(target / "pgjobs" / "_migrations")
    result = subprocess.run(
        [sys.executable, "-m", "pgjobs", "migrate"],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert f"migrated from nothing to {_migrate.SCHEMA_REVISION}" in result.stdout


def _fingerprint_index(conn) -> str:
    (definition,) = conn.execute(
        "SELECT pg_get_indexdef('pgjobs.jobs_fingerprint_active_idx'::regclass)"
    ).fetchone()
    return definition


def _dedups(conn) -> list[object]:
    """Enqueue the same fingerprint twice and a job without one, through both SQL functions."""
    return [
        conn.execute("SELECT pgjobs.enqueue('t', fingerprint => 'fp')").fetchone()[0] is not None,
        conn.execute("SELECT pgjobs.enqueue('t', fingerprint => 'fp')").fetchone()[0],
        conn.execute(
            "SELECT count(*) FROM pgjobs.enqueue_many("
            " ARRAY['t', 't', 't'], ARRAY['{}', '{}', '{}']::jsonb[], ARRAY['q', 'q', 'q'],"
            " ARRAY[2, 2, 2], ARRAY[NULL, NULL, NULL]::timestamptz[], ARRAY['fp', NULL, NULL],"
            " ARRAY[3, 3, 3], ARRAY['{}', '{}', '{}']::jsonb[])"
        ).fetchone()[0],
    ]


def _wake_language(conn) -> str:
    (language,) = conn.execute(
        "SELECT l.lanname FROM pg_proc p JOIN pg_language l ON l.oid = p.prolang"
        " WHERE p.oid = 'pgjobs.wake(text)'::regprocedure"
    ).fetchone()
    return language


def _wakes(conn, dsn) -> list[str]:
    """Enqueue for a queue whose worker awaits work, and one whose worker does not."""
    conn.execute("TRUNCATE pgjobs.workers")
    # Rows of no running process: heartbeats an hour old, so that `migrate`
    # does not refuse to change the schema under them (test_0015_* does).
    conn.execute(
        "INSERT INTO pgjobs.workers (host, pid, queues, concurrency, awaiting_work, last_seen_at)"
        " VALUES ('h', 1, ARRAY['waiting'], 1, true, now() - interval '1 hour'),"
        " ('h', 2, ARRAY['busy'], 1, false, now() - interval '1 hour')"
    )
    with psycopg.connect(dsn, autocommit=True) as listener:
        listener.execute(f"LISTEN {WAKE_CHANNEL}")
        conn.execute("SELECT pgjobs.enqueue('t', queue => 'waiting')")
        conn.execute("SELECT pgjobs.enqueue('t', queue => 'busy')")
        return [n.payload for n in listener.notifies(timeout=0.3)]


def _downgrade(dsn: str, revision: str) -> None:
    """Alembic's downgrade to `revision`, on a connection of our own."""
    from alembic import command
    from sqlalchemy import create_engine

    engine = create_engine("postgresql+psycopg://", creator=lambda: psycopg.connect(dsn))
    try:
        with engine.begin() as connection:
            config = _migrate._config()
            config.attributes["connection"] = connection
            command.downgrade(config, revision)
    finally:
        engine.dispose()


def test_0004_and_0005_upgrade_and_downgrade_keeping_dedup_and_wake_ups(empty_db):
    _migrate.upgrade(empty_db, "0003")
    with psycopg.connect(empty_db, autocommit=True) as conn:
        assert "fingerprint IS NOT NULL" not in _fingerprint_index(conn)
        assert _dedups(conn) == [True, None, 2]
        assert _wakes(conn, empty_db) == ["waiting"]
        assert _wake_language(conn) == "sql"
        conn.execute("TRUNCATE pgjobs.jobs")
    assert _migrate.upgrade(empty_db, "0008") == ("0003", "0008")
    with psycopg.connect(empty_db, autocommit=True) as conn:
        assert _fingerprint_index(conn).endswith(
            "WHERE ((status = ANY (ARRAY['queued'::pgjobs.job_status, "
            "'running'::pgjobs.job_status])) AND (fingerprint IS NOT NULL))"
        )
        # The functions' ON CONFLICT finds the new index: dedup works as before.
        assert _dedups(conn) == [True, None, 2]
        # 0005: wake is PL/pgSQL now, and still notifies only a waiting queue.
        assert _wake_language(conn) == "plpgsql"
        assert _wakes(conn, empty_db) == ["waiting"]
        conn.execute("TRUNCATE pgjobs.jobs")
    _downgrade(empty_db, "0003")
    with psycopg.connect(empty_db, autocommit=True) as conn:
        assert "fingerprint IS NOT NULL" not in _fingerprint_index(conn)
        assert _dedups(conn) == [True, None, 2]
        assert _wakes(conn, empty_db) == ["waiting"]
        assert _wake_language(conn) == "sql"


def _fetch_index(conn) -> str:
    (definition,) = conn.execute(
        "SELECT pg_get_indexdef('pgjobs.jobs_fetch_idx'::regclass)"
    ).fetchone()
    return definition


def test_0006_leads_the_fetch_index_with_the_queue_hash_and_downgrades(empty_db):
    _migrate.upgrade(empty_db, "0005")
    with psycopg.connect(empty_db, autocommit=True) as conn:
        assert "(queue, priority, run_at, id)" in _fetch_index(conn)
        conn.execute("SELECT pgjobs.enqueue('t', queue => 'q')")
    _migrate.upgrade(empty_db, "0006")
    with psycopg.connect(empty_db, autocommit=True) as conn:
        assert "(hashtext(queue), priority, run_at, id) INCLUDE (queue)" in _fetch_index(conn)
        # The job queued before the migration is in the new index, and a
        # claim-shaped query reads it from there.
        query = (
            "SELECT id FROM pgjobs.jobs"
            " WHERE status = 'queued' AND hashtext(queue) = hashtext('q') AND queue = 'q'"
            " ORDER BY priority, run_at, id"
        )
        conn.execute("SET enable_seqscan = off")
        plan = "\n".join(row[0] for row in conn.execute(f"EXPLAIN {query}").fetchall())
        assert "using jobs_fetch_idx" in plan, plan
        assert len(conn.execute(query).fetchall()) == 1
    _downgrade(empty_db, "0005")
    with psycopg.connect(empty_db, autocommit=True) as conn:
        assert "(queue, priority, run_at, id)" in _fetch_index(conn)


_BROKEN_ROWS = {
    "empty queue": "INSERT INTO pgjobs.jobs (task, queue) VALUES ('t', '')",
    "long queue": "INSERT INTO pgjobs.jobs (task, queue) VALUES ('t', repeat('q', 129))",
    "empty task": "INSERT INTO pgjobs.jobs (task) VALUES ('')",
    "long task": "INSERT INTO pgjobs.jobs (task) VALUES (repeat('t', 256))",
    "priority": "INSERT INTO pgjobs.jobs (task, priority) VALUES ('t', 5)",
    "array args": "INSERT INTO pgjobs.jobs (task, args) VALUES ('t', '[1]')",
    "attempts": "INSERT INTO pgjobs.jobs (task, attempts) VALUES ('t', -1)",
    "max_attempts": "INSERT INTO pgjobs.jobs (task, max_attempts) VALUES ('t', 0)",
    "running, no worker": "INSERT INTO pgjobs.jobs (task, status) VALUES ('t', 'running')",
    "update": "UPDATE pgjobs.jobs SET priority = -1",
}


def _refused(conn) -> list[str]:
    """Which broken rows are refused, each by a check (SQLSTATE 23514)."""
    conn.execute("INSERT INTO pgjobs.jobs (task, queue) VALUES ('t', repeat('q', 128))")
    refused = []
    for name, statement in _BROKEN_ROWS.items():
        try:
            conn.execute(statement)
        except psycopg.errors.CheckViolation:
            refused.append(name)
    conn.execute("TRUNCATE pgjobs.jobs")
    return refused


def _views(conn) -> dict[str, str]:
    rows = conn.execute(
        "SELECT viewname, definition FROM pg_views WHERE schemaname = 'pgjobs' ORDER BY 1"
    ).fetchall()
    return dict(rows)


def _view_columns(conn) -> list[tuple[str, str]]:
    return conn.execute(
        "SELECT table_name, column_name FROM information_schema.columns"
        " WHERE table_schema = 'pgjobs' AND table_name IN"
        " ('job_states', 'queue_stats', 'failed_jobs') ORDER BY table_name, ordinal_position"
    ).fetchall()


def test_0007_moves_the_column_checks_into_domains_and_back(empty_db):
    _migrate.upgrade(empty_db, "0006")
    with psycopg.connect(empty_db, autocommit=True) as conn:
        assert _refused(conn) == list(_BROKEN_ROWS)
        views, columns = _views(conn), _view_columns(conn)
        assert sorted(views) == ["failed_jobs", "job_states", "queue_stats"]
        conn.execute("SELECT pgjobs.enqueue('kept', '{\"n\": 1}', queue => 'q', priority => 4)")
    _migrate.upgrade(empty_db, "0007")
    with psycopg.connect(empty_db, autocommit=True) as conn:
        (types,) = conn.execute(
            "SELECT array_agg(format_type(atttypid, NULL) ORDER BY attnum) FROM pg_attribute"
            " WHERE attrelid = 'pgjobs.jobs'::regclass AND attname IN"
            " ('queue', 'task', 'args', 'priority', 'attempts', 'max_attempts')"
        ).fetchone()
        assert types == [
            "pgjobs.queue_name",
            "pgjobs.task_name",
            "pgjobs.job_args",
            "pgjobs.job_priority",
            "pgjobs.attempt_count",
            "pgjobs.attempt_limit",
        ]
        (checks,) = conn.execute(
            "SELECT array_agg(conname ORDER BY conname) FROM pg_constraint"
            " WHERE conrelid = 'pgjobs.jobs'::regclass AND contype = 'c'"
        ).fetchone()
        assert checks == ["jobs_running_owned"]
        # The job written before is still there, and readable through the views.
        kept = conn.execute("SELECT task, args, queue, priority FROM pgjobs.job_states")
        assert kept.fetchall() == [("kept", {"n": 1}, "q", 4)]
        # The same views; their text now casts the domains where it compares.
        assert _view_columns(conn) == columns
        conn.execute("TRUNCATE pgjobs.jobs")
        assert _refused(conn) == list(_BROKEN_ROWS)
    _downgrade(empty_db, "0006")
    with psycopg.connect(empty_db, autocommit=True) as conn:
        assert _refused(conn) == list(_BROKEN_ROWS)
        assert _views(conn) == views
        (domains,) = conn.execute(
            "SELECT count(*) FROM pg_type WHERE typnamespace = 'pgjobs'::regnamespace"
            " AND typtype = 'd'"
        ).fetchone()
        assert domains == 0


def test_0007_keeps_the_views_grants_owner_and_comments(empty_db):
    reader = f"pgjobs_reader_{secrets.token_hex(4)}"

    def kept(conn) -> tuple[object, ...]:
        return conn.execute(
            "SELECT has_table_privilege(%s, 'pgjobs.job_states', 'SELECT'),"
            " has_table_privilege(%s, 'pgjobs.failed_jobs', 'SELECT'),"
            " has_table_privilege('public', 'pgjobs.queue_stats', 'SELECT'),"
            " obj_description('pgjobs.queue_stats'::regclass, 'pg_class'),"
            " (SELECT relowner::regrole::text FROM pg_class"
            "  WHERE oid = 'pgjobs.job_states'::regclass)",
            (reader, reader),
        ).fetchone()

    _migrate.upgrade(empty_db, "0006")
    with psycopg.connect(empty_db, autocommit=True) as conn:
        conn.execute(f'CREATE ROLE "{reader}"')
        try:
            conn.execute(f'GRANT SELECT ON pgjobs.job_states TO "{reader}"')
            conn.execute("GRANT SELECT ON pgjobs.queue_stats TO PUBLIC")
            conn.execute("COMMENT ON VIEW pgjobs.queue_stats IS 'per queue, it''s live'")
            before = kept(conn)
            assert before[:4] == (True, False, True, "per queue, it's live")
            _migrate.upgrade(empty_db, "0007")
            assert kept(conn) == before
            _downgrade(empty_db, "0006")
            assert kept(conn) == before
        finally:
            conn.execute(f'DROP OWNED BY "{reader}"')
            conn.execute(f'DROP ROLE "{reader}"')


def test_0008_calls_a_job_in_its_backoff_retrying_and_downgrades(empty_db):
    reader = f"pgjobs_reader_{secrets.token_hex(4)}"

    def states(conn) -> dict[str, str]:
        return dict(conn.execute("SELECT task, state FROM pgjobs.job_states").fetchall())

    def kept(conn) -> tuple[object, ...]:
        return conn.execute(
            "SELECT has_table_privilege(%s, 'pgjobs.job_states', 'SELECT'),"
            " obj_description('pgjobs.job_states'::regclass, 'pg_class'),"
            " (SELECT relowner::regrole::text FROM pg_class"
            "  WHERE oid = 'pgjobs.job_states'::regclass)",
            (reader,),
        ).fetchone()

    _migrate.upgrade(empty_db, "0007")
    with psycopg.connect(empty_db, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO pgjobs.jobs (task, attempts, run_at) VALUES"
            " ('backing-off', 1, now() + interval '1 hour'), ('due-retry', 1, now()),"
            " ('delayed', 0, now() + interval '1 hour'), ('due', 0, now())"
        )
        before = states(conn)
        assert before == {
            "backing-off": "scheduled",
            "due-retry": "retrying",
            "delayed": "scheduled",
            "due": "queued",
        }
        columns = _view_columns(conn)
        conn.execute(f'CREATE ROLE "{reader}"')
        try:
            conn.execute(f'GRANT SELECT ON pgjobs.job_states TO "{reader}"')
            conn.execute("COMMENT ON VIEW pgjobs.job_states IS 'states, derived'")
            # A view of the operator's own over job_states does not stop the migration.
            conn.execute("CREATE VIEW public.my_retrying AS SELECT id FROM pgjobs.job_states")
            grants = kept(conn)
            assert grants[:2] == (True, "states, derived")

            _migrate.upgrade(empty_db, "0008")
            assert states(conn) == {**before, "backing-off": "retrying"}
            assert _view_columns(conn) == columns
            assert kept(conn) == grants

            _downgrade(empty_db, "0007")
            assert states(conn) == before
            assert kept(conn) == grants
        finally:
            conn.execute("DROP VIEW IF EXISTS public.my_retrying")
            conn.execute(f'DROP OWNED BY "{reader}"')
            conn.execute(f'DROP ROLE "{reader}"')


# -- 0009: the live table and the partitioned history ------------------------------


def _jobs(conn) -> list[tuple]:
    return conn.execute(
        "SELECT id, status::text, queue, task, args, attempts, finished_at, errors"
        " FROM pgjobs.jobs ORDER BY id"
    ).fetchall()


def _fill_0008(conn, finished: int, queued: int) -> None:
    """Finished jobs over the last 10 days, a backlog, one running job, and an odd row."""
    conn.execute(
        "INSERT INTO pgjobs.jobs (task, args, status, attempts, started_at, finished_at, errors)"
        " SELECT 't' || (g %% 7), jsonb_build_object('g', g),"
        "  (ARRAY['succeeded', 'failed', 'cancelled'])[1 + g %% 3]::pgjobs.job_status, 1,"
        "  now() - make_interval(secs => g %% 864000), now() - make_interval(secs => g %% 864000),"
        "  CASE WHEN g %% 3 = 1 THEN '[{\"type\": \"E\"}]'::jsonb ELSE '[]' END"
        " FROM generate_series(1, %s) AS g",
        [finished],
    )
    conn.execute(
        "INSERT INTO pgjobs.jobs (task, args, fingerprint) SELECT 'q', jsonb_build_object('g', g),"
        " CASE WHEN g %% 2 = 0 THEN 'fp' || g END FROM generate_series(1, %s) AS g",
        [queued],
    )
    conn.execute(
        "INSERT INTO pgjobs.workers (id, host, pid, queues, concurrency, last_seen_at)"
        " OVERRIDING SYSTEM VALUE VALUES (1, 'h', 1, '{default}', 1, now() - interval '1 hour')"
    )
    conn.execute(
        "INSERT INTO pgjobs.jobs (task, status, worker_id, attempts) VALUES ('r', 'running', 1, 1)"
    )
    # Hand-inserted and finished, with no finished_at: carried over unchanged.
    conn.execute("INSERT INTO pgjobs.jobs (task, status) VALUES ('odd', 'succeeded')")


def test_0009_moves_finished_jobs_to_the_history_keeping_every_id(empty_db):
    _migrate.upgrade(empty_db, "0008")
    with psycopg.connect(empty_db, autocommit=True) as conn:
        _fill_0008(conn, finished=3000, queued=200)
        before = _jobs(conn)
    assert _migrate.upgrade(empty_db) == ("0008", _migrate.SCHEMA_REVISION)
    with psycopg.connect(empty_db, autocommit=True) as conn:
        # Right after the cutover every job is still where it was, and visible.
        assert _jobs(conn) == before
        assert conn.execute("SELECT count(*) FROM pgjobs.job_history").fetchone() == (0,)
    assert _migrate.move_finished(empty_db, batch=700) == 3000
    with psycopg.connect(empty_db, autocommit=True) as conn:
        assert _jobs(conn) == before
        live = dict(conn.execute("SELECT status::text, count(*) FROM pgjobs.jobs_live GROUP BY 1"))
        assert live == {"queued": 200, "running": 1, "succeeded": 1}  # the odd row stays
        history = dict(
            conn.execute("SELECT status::text, count(*) FROM pgjobs.job_history GROUP BY 1")
        )
        assert history == {"succeeded": 1000, "failed": 1000, "cancelled": 1000}
        # The views, the functions and the fingerprint dedup work on the new tables.
        stats = conn.execute(
            "SELECT available, running, succeeded, failed, cancelled FROM pgjobs.queue_stats"
            " WHERE queue = 'default'"
        ).fetchone()
        assert stats == (200, 1, 1001, 1000, 1000)
        assert conn.execute("SELECT count(*) FROM pgjobs.failed_jobs").fetchone() == (1000,)
        failed_id = conn.execute("SELECT min(id) FROM pgjobs.failed_jobs").fetchone()[0]
        conn.execute("SELECT pgjobs.retry(%s)", [failed_id])
        assert conn.execute(
            "SELECT status::text FROM pgjobs.jobs_live WHERE id = %s", [failed_id]
        ).fetchone() == ("queued",)
        assert conn.execute("SELECT pgjobs.enqueue('q', fingerprint => 'fp2')").fetchone() == (
            None,
        )
        new_id = conn.execute("SELECT pgjobs.enqueue('q')").fetchone()[0]
        assert new_id > max(row[0] for row in before)
    _downgrade(empty_db, "0008")
    with psycopg.connect(empty_db, autocommit=True) as conn:
        assert conn.execute(
            "SELECT relkind FROM pg_class WHERE oid = 'pgjobs.jobs'::regclass"
        ).fetchone() == ("r",)
        assert conn.execute("SELECT count(*) FROM pgjobs.jobs").fetchone() == (len(before) + 1,)
        conn.execute("SELECT pgjobs.cancel(%s)", [new_id])
    _migrate.upgrade(empty_db)


def test_0009_refuses_a_view_of_yours_over_the_old_table(empty_db):
    _migrate.upgrade(empty_db, "0008")
    with psycopg.connect(empty_db, autocommit=True) as conn:
        conn.execute("CREATE VIEW public.my_failures AS SELECT id FROM pgjobs.jobs")
    with pytest.raises(psycopg.errors.RaiseException, match=r"public\.my_failures"):
        _migrate.upgrade(empty_db)
    with psycopg.connect(empty_db, autocommit=True) as conn:
        assert _migrate.current_revision(conn) == "0008"
        conn.execute("DROP VIEW public.my_failures")
    assert _migrate.upgrade(empty_db)[1] == _migrate.SCHEMA_REVISION


@pytest.mark.slow
def test_0009_migrates_a_million_finished_jobs_and_ten_thousand_queued_losing_none(empty_db):
    """The issue's online migration: the cutover is catalog work; the rows move after."""
    import time

    _migrate.upgrade(empty_db, "0008")
    with psycopg.connect(empty_db, autocommit=True) as conn:
        _fill_0008(conn, finished=1_000_000, queued=10_000)
        conn.execute("VACUUM ANALYZE pgjobs.jobs")
        count, ids = conn.execute("SELECT count(*), sum(id) FROM pgjobs.jobs").fetchone()
        by_status = dict(conn.execute("SELECT status::text, count(*) FROM pgjobs.jobs GROUP BY 1"))
    started = time.perf_counter()
    _migrate.upgrade(empty_db)
    cutover = time.perf_counter() - started
    started = time.perf_counter()
    moved = _migrate.move_finished(empty_db)
    moving = time.perf_counter() - started
    print(f"0009 on 1,010,002 jobs: cutover {cutover:.2f} s, then {moved} moved in {moving:.1f} s")
    assert moved == 1_000_000
    with psycopg.connect(empty_db, autocommit=True) as conn:
        assert conn.execute("SELECT count(*), sum(id) FROM pgjobs.jobs").fetchone() == (count, ids)
        assert (
            dict(conn.execute("SELECT status::text, count(*) FROM pgjobs.jobs GROUP BY 1"))
            == by_status
        )
        assert conn.execute(
            "SELECT count(*) FROM pgjobs.jobs_live WHERE status = 'queued'"
        ).fetchone() == (10_000,)
        assert conn.execute("SELECT count(*) FROM pgjobs.job_history").fetchone() == (1_000_000,)
        # No id is in both tables.
        assert conn.execute(
            "SELECT count(*) FROM pgjobs.jobs_live AS l JOIN pgjobs.job_history AS h USING (id)"
        ).fetchone() == (0,)


# -- 0010: job control (result waiters, cancelling running jobs) ------------------


def test_0010_adds_the_cancel_columns_to_both_tables_and_every_view_and_downgrades(empty_db):
    _migrate.upgrade(empty_db, "0009")
    with psycopg.connect(empty_db, autocommit=True) as conn:
        conn.execute("GRANT SELECT ON pgjobs.job_states TO PUBLIC")
        _fill_0008(conn, finished=30, queued=5)
        conn.execute("SELECT pgjobs.move_finished_to_history()")
        before = _jobs(conn)
    assert _migrate.upgrade(empty_db, "0010") == ("0009", "0010")
    with psycopg.connect(empty_db, autocommit=True) as conn:
        assert _jobs(conn) == before
        for relation in ("jobs_live", "job_history", "jobs", "job_states"):
            names = [
                row[0]
                for row in conn.execute(
                    "SELECT attname FROM pg_attribute WHERE attrelid = %s::regclass"
                    " AND attnum > 0 AND NOT attisdropped ORDER BY attnum",
                    [f"pgjobs.{relation}"],
                )
            ]
            assert names[names.index("meta") + 1 :][:2] == [
                "cancel_requested_at",
                "cancelled_by",
            ], relation
        # The view's grant survived the rebuild; the trigger writes the new columns.
        assert conn.execute(
            "SELECT has_table_privilege('public', 'pgjobs.job_states', 'SELECT')"
        ).fetchone() == (True,)
        new_id = conn.execute(
            "INSERT INTO pgjobs.jobs (task, status, finished_at, cancelled_by)"
            " VALUES ('v', 'cancelled', now(), 'me') RETURNING id"
        ).fetchone()[0]
        assert conn.execute(
            "SELECT cancelled_by FROM pgjobs.job_history WHERE id = %s", [new_id]
        ).fetchone() == ("me",)
        running = conn.execute("SELECT id FROM pgjobs.jobs WHERE status = 'running'").fetchone()
        conn.execute("SELECT pgjobs.cancel(%s, 'op')", [running[0]])
        assert conn.execute(
            "SELECT status::text, cancelled_by FROM pgjobs.job_states WHERE id = %s", [running[0]]
        ).fetchone() == ("running", "op")
        # A retry of a cancelled job clears the cancel.
        conn.execute("SELECT pgjobs.retry(%s)", [new_id])
        assert conn.execute(
            "SELECT status::text, cancelled_by FROM pgjobs.jobs_live WHERE id = %s", [new_id]
        ).fetchone() == ("queued", None)
        assert conn.execute("SELECT count(*) FROM pgjobs.result_waiters").fetchone() == (0,)
    _downgrade(empty_db, "0009")
    with psycopg.connect(empty_db, autocommit=True) as conn:
        assert conn.execute(
            "SELECT count(*) FROM pg_attribute WHERE attrelid = 'pgjobs.jobs'::regclass"
            " AND attname = 'cancelled_by' AND NOT attisdropped"
        ).fetchone() == (0,)
        assert conn.execute("SELECT to_regclass('pgjobs.result_waiters')").fetchone() == (None,)
        assert len(_jobs(conn)) == len(before) + 1
        queued = conn.execute("SELECT id FROM pgjobs.jobs WHERE status = 'queued' LIMIT 1")
        conn.execute("SELECT pgjobs.cancel(%s)", [queued.fetchone()[0]])
    assert _migrate.upgrade(empty_db, "0010") == ("0009", "0010")


# -- 0011: webhooks -------------------------------------------------------------------


def test_0011_adds_webhooks_that_fire_on_the_history_and_downgrades(empty_db):
    _migrate.upgrade(empty_db, "0010")
    with psycopg.connect(empty_db, autocommit=True) as conn:
        conn.execute("INSERT INTO pgjobs.jobs (task) VALUES ('queued-before')")
    assert _migrate.upgrade(empty_db, "0011") == ("0010", "0011")
    with psycopg.connect(empty_db, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO pgjobs.webhooks (name, url, secret, events)"
            " VALUES ('w', 'https://example.com/', '0123456789abcdef', ARRAY['cancelled'])"
        )
        conn.execute("SELECT pgjobs.cancel(1)")
        assert conn.execute(
            "SELECT args->'payload'->>'event' FROM pgjobs.jobs WHERE task = 'pgjobs.webhook'"
        ).fetchall() == [("cancelled",)]
    _downgrade(empty_db, "0010")
    with psycopg.connect(empty_db, autocommit=True) as conn:
        assert conn.execute("SELECT to_regclass('pgjobs.webhooks')").fetchone() == (None,)
        assert conn.execute(
            "SELECT count(*) FROM pg_trigger WHERE tgrelid = 'pgjobs.job_history'::regclass"
            " AND NOT tgisinternal"
        ).fetchone() == (0,)
        assert conn.execute(
            "SELECT proconfig FROM pg_proc WHERE oid ="
            " 'pgjobs.move_finished_to_history(integer)'::regprocedure"
        ).fetchone() == (None,)
        conn.execute(
            "INSERT INTO pgjobs.jobs (task, status, finished_at) VALUES ('t', 'succeeded', now())"
        )
    assert _migrate.upgrade(empty_db, "0011") == ("0010", "0011")


# -- 0012: flow control (queue limits, job keys) ----------------------------------


def test_0012_adds_queue_limits_and_the_key_to_both_tables_and_every_view_and_downgrades(
    empty_db,
):
    _migrate.upgrade(empty_db, "0011")
    with psycopg.connect(empty_db, autocommit=True) as conn:
        conn.execute("GRANT SELECT ON pgjobs.queue_stats TO PUBLIC")
        _fill_0008(conn, finished=30, queued=5)
        conn.execute("SELECT pgjobs.move_finished_to_history()")
        conn.execute("INSERT INTO pgjobs.queues (name, paused) VALUES ('default', true)")
        before = _jobs(conn)
    assert _migrate.upgrade(empty_db, "0012") == ("0011", "0012")
    with psycopg.connect(empty_db, autocommit=True) as conn:
        assert _jobs(conn) == before
        for relation in ("jobs_live", "job_history", "jobs", "job_states"):
            names = [
                row[0]
                for row in conn.execute(
                    "SELECT attname FROM pg_attribute WHERE attrelid = %s::regclass"
                    " AND attnum > 0 AND NOT attisdropped ORDER BY attnum",
                    [f"pgjobs.{relation}"],
                )
            ]
            assert names[names.index("timeout") + 1] == "key", relation
        assert conn.execute(
            "SELECT has_table_privilege('public', 'pgjobs.queue_stats', 'SELECT')"
        ).fetchone() == (True,)
        assert conn.execute(
            "SELECT paused, concurrency, key_concurrency FROM pgjobs.queues"
        ).fetchone() == (True, None, None)
        with pytest.raises(psycopg.errors.CheckViolation):
            conn.execute("UPDATE pgjobs.queues SET key_concurrency = 0")
        # Every path that moves a job keeps its key: the view's trigger, the
        # SQL enqueue, cancel and retry.
        written = conn.execute(
            "INSERT INTO pgjobs.jobs (task, status, finished_at, key)"
            " VALUES ('v', 'failed', now(), 'k1') RETURNING id"
        ).fetchone()[0]
        queued = conn.execute("SELECT pgjobs.enqueue('v', key => 'k2')").fetchone()[0]
        conn.execute("SELECT pgjobs.cancel(%s)", [queued])
        conn.execute("SELECT pgjobs.retry(%s)", [written])
        assert conn.execute(
            "SELECT id, status::text, key FROM pgjobs.jobs WHERE key IS NOT NULL ORDER BY id"
        ).fetchall() == [(written, "queued", "k1"), (queued, "cancelled", "k2")]
    _downgrade(empty_db, "0011")
    with psycopg.connect(empty_db, autocommit=True) as conn:
        assert conn.execute(
            "SELECT count(*) FROM pg_attribute WHERE attrelid = 'pgjobs.jobs'::regclass"
            " AND attname = 'key' AND NOT attisdropped"
        ).fetchone() == (0,)
        assert conn.execute("SELECT to_regtype('pgjobs.job_key')").fetchone() == (None,)
        assert conn.execute("SELECT paused FROM pgjobs.queues").fetchone() == (True,)
        assert len(_jobs(conn)) == len(before) + 2
        # 0010's functions work again.
        queued = conn.execute("SELECT pgjobs.enqueue('v', timeout => 1.0)").fetchone()[0]
        conn.execute("SELECT pgjobs.cancel(%s, 'op')", [queued])
        conn.execute("SELECT pgjobs.retry(%s)", [queued])
    assert _migrate.upgrade(empty_db, "0012") == ("0011", "0012")


# -- 0013: rate limits per queue ------------------------------------------------

#: The rate limits' revision, and the one before it (the lead may renumber it).
RATES = "0013"
BEFORE_RATES = f"{int(RATES) - 1:04d}"


def test_rate_limits_add_columns_a_table_and_a_claim_function_and_downgrade(empty_db):
    _migrate.upgrade(empty_db, BEFORE_RATES)
    with psycopg.connect(empty_db, autocommit=True) as conn:
        conn.execute("INSERT INTO pgjobs.queues (name, concurrency) VALUES ('q', 1)")
        conn.execute("SELECT pgjobs.enqueue('t', queue => 'q')")
        conn.execute("SELECT pgjobs.enqueue('t', queue => 'q')")
    assert _migrate.upgrade(empty_db, RATES) == (BEFORE_RATES, RATES)
    with psycopg.connect(empty_db, autocommit=True) as conn:
        assert conn.execute(
            "SELECT concurrency, rate_limit, rate_burst, rate_full_at FROM pgjobs.queues"
        ).fetchone() == (1, None, None, None)
        with pytest.raises(psycopg.errors.CheckViolation, match="queues_rate_limit_valid"):
            conn.execute("UPDATE pgjobs.queues SET rate_limit = '0/s'")
        with pytest.raises(psycopg.errors.CheckViolation, match="queues_key_rate_limit_valid"):
            conn.execute("UPDATE pgjobs.queues SET key_rate_limit = '1/d'")
        conn.execute("UPDATE pgjobs.queues SET rate_limit = '1/h', concurrency = NULL")
        # 0012's function takes the rate too, for 0012's workers.
        assert conn.execute("SELECT pgjobs.claim_limited('q', 5)").fetchone() == ([1],)
        assert conn.execute("SELECT pgjobs.claim_limited('q', 5)").fetchone() == ([],)
        assert conn.execute(
            "SELECT ids, rate_wait > 0 FROM pgjobs.claim_within_limits('q', 5)"
        ).fetchone() == ([], True)
    _downgrade(empty_db, BEFORE_RATES)
    with psycopg.connect(empty_db, autocommit=True) as conn:
        assert conn.execute(
            "SELECT to_regprocedure('pgjobs.claim_within_limits(text, integer)')"
        ).fetchone() == (None,)
        assert conn.execute(
            "SELECT count(*) FROM pg_attribute WHERE attrelid = 'pgjobs.queues'::regclass"
            " AND attname LIKE '%rate%' AND NOT attisdropped"
        ).fetchone() == (0,)
        assert conn.execute("SELECT to_regclass('pgjobs.queue_key_rates')").fetchone() == (None,)
        assert conn.execute(
            "SELECT count(*) FROM pg_proc WHERE proname LIKE 'rate%'"
            " AND pronamespace = 'pgjobs'::regnamespace"
        ).fetchone() == (0,)
        # 0012's function is its own again, and ignores no limit it knows.
        conn.execute("UPDATE pgjobs.queues SET concurrency = 1")
        assert conn.execute("SELECT pgjobs.claim_limited('q', 5)").fetchone() == ([1],)
    assert _migrate.upgrade(empty_db, RATES) == (BEFORE_RATES, RATES)


# -- 0014: workflows (depends_on, the blocked status) ------------------------------


def test_0014_adds_the_blocked_status_and_dependencies_and_downgrades(empty_db):
    _migrate.upgrade(empty_db, "0013")
    with psycopg.connect(empty_db, autocommit=True) as conn:
        _fill_0008(conn, finished=5, queued=3)
        before = _jobs(conn)
    assert _migrate.upgrade(empty_db, "0014") == ("0013", "0014")
    with psycopg.connect(empty_db, autocommit=True) as conn:
        assert _jobs(conn) == before
        parent = conn.execute("SELECT pgjobs.enqueue('p')").fetchone()[0]
        child = conn.execute("SELECT pgjobs.enqueue('c')").fetchone()[0]
        conn.execute("UPDATE pgjobs.jobs_live SET status = 'blocked' WHERE id = %s", [child])
        conn.execute(
            "INSERT INTO pgjobs.job_dependencies (parent_id, job_id) VALUES (%s, %s)",
            [parent, child],
        )
        # A blocked job is cancelled like a queued one, and so are its dependents.
        conn.execute("SELECT pgjobs.cancel(%s)", [parent])
        assert conn.execute(
            "SELECT status::text FROM pgjobs.jobs WHERE id = %s", [child]
        ).fetchone() == ("cancelled",)
        blocked = conn.execute("SELECT pgjobs.enqueue('b')").fetchone()[0]
        conn.execute("UPDATE pgjobs.jobs_live SET status = 'blocked' WHERE id = %s", [blocked])
    # Blocked jobs do not exist below 0014: the downgrade says so and changes nothing.
    import sqlalchemy.exc

    with pytest.raises(sqlalchemy.exc.DBAPIError, match="1 blocked jobs"):
        _downgrade(empty_db, "0013")
    with psycopg.connect(empty_db, autocommit=True) as conn:
        conn.execute("SELECT pgjobs.cancel(%s)", [blocked])
    _downgrade(empty_db, "0013")
    with psycopg.connect(empty_db, autocommit=True) as conn:
        assert conn.execute("SELECT to_regclass('pgjobs.job_dependencies')").fetchone() == (None,)
        queued = conn.execute("SELECT pgjobs.enqueue('v')").fetchone()[0]
        conn.execute("SELECT pgjobs.cancel(%s)", [queued])
    assert _migrate.upgrade(empty_db, "0014") == ("0013", "0014")


# -- 0015: the compatible window ----------------------------------------------------

# The revision that made pgjobs.schema_window, and the two before it (renumbering
# that migration changes _window.FIRST_WINDOW, and these follow).
WINDOW = _window.FIRST_WINDOW
BEFORE_WINDOW = _window.LAST_UNRECORDED
TWO_BEFORE = f"{int(WINDOW) - 2:04d}"


def _live_worker(conn) -> None:
    """A worker row as code before the window writes it (no code revision), heartbeat fresh."""
    conn.execute(
        "INSERT INTO pgjobs.workers (host, pid, queues, concurrency) VALUES ('old', 7, '{a}', 1)"
    )


def test_the_window_migration_records_the_window_and_the_workers_code_and_downgrades(empty_db):
    _migrate.upgrade(empty_db, TWO_BEFORE)
    with psycopg.connect(empty_db, autocommit=True) as conn:
        _live_worker(conn)
    # BEFORE_WINDOW declares no window: only its own code works on it, so a
    # running worker of TWO_BEFORE stops the migration, named; nothing changes.
    with pytest.raises(IncompatibleWorkersError) as refused:
        _migrate.upgrade(empty_db, WINDOW)
    message = str(refused.value)
    assert f"from {TWO_BEFORE} to {WINDOW}" in message
    assert f"worker 1 (old, pid 7): code revision {TWO_BEFORE} assumed" in message
    assert "--force" in message
    with psycopg.connect(empty_db) as conn:
        assert _migrate.current_schema(conn) == Schema(TWO_BEFORE)
    with psycopg.connect(empty_db, autocommit=True) as conn:
        conn.execute("UPDATE pgjobs.workers SET last_seen_at = now() - interval '1 hour'")
    assert _migrate.upgrade(empty_db, BEFORE_WINDOW) == (TWO_BEFORE, BEFORE_WINDOW)
    with psycopg.connect(empty_db, autocommit=True) as conn:
        conn.execute("TRUNCATE pgjobs.workers")
        _live_worker(conn)  # now a worker of BEFORE_WINDOW
    # The window's migration only adds, and declares that code of the
    # revision before it still works against it.
    assert _migrate.upgrade(empty_db, WINDOW) == (BEFORE_WINDOW, WINDOW)
    with psycopg.connect(empty_db, autocommit=True) as conn:
        assert _migrate.current_schema(conn) == Schema(WINDOW, BEFORE_WINDOW)
        assert conn.execute(
            "SELECT revision, oldest_code FROM pgjobs.schema_window"
        ).fetchall() == [(WINDOW, BEFORE_WINDOW)]
        assert conn.execute(
            "SELECT host, code_revision, version FROM pgjobs.workers"
        ).fetchall() == [("old", None, None)]
        # A worker of the revision before registers as before: its INSERT names its columns.
        _live_worker(conn)
        conn.execute("TRUNCATE pgjobs.workers")
    _downgrade(empty_db, BEFORE_WINDOW)
    with psycopg.connect(empty_db, autocommit=True) as conn:
        assert conn.execute("SELECT to_regclass('pgjobs.schema_window')").fetchone() == (None,)
        assert _migrate.current_schema(conn) == Schema(BEFORE_WINDOW)
        columns = conn.execute(
            "SELECT count(*) FROM information_schema.columns WHERE table_schema = 'pgjobs'"
            " AND table_name = 'workers' AND column_name IN ('code_revision', 'version')"
        ).fetchone()
        assert columns == (0,)
    assert _migrate.upgrade(empty_db, WINDOW) == (BEFORE_WINDOW, WINDOW)


def test_force_migrates_past_running_workers_and_warns_with_them(empty_db):
    _migrate.upgrade(empty_db, TWO_BEFORE)
    with psycopg.connect(empty_db, autocommit=True) as conn:
        _live_worker(conn)
    warnings: list[str] = []
    assert _migrate.upgrade(empty_db, WINDOW, force=True, warn=warnings.append) == (
        TWO_BEFORE,
        WINDOW,
    )
    assert len(warnings) == 1
    assert "worker 1 (old, pid 7)" in warnings[0]
    assert "Migrating anyway (--force)" in warnings[0]


# -- 0016: a dependency that runs whatever its parent's outcome (always) ------------


def test_0016_adds_always_dependencies_and_downgrades_once_none_waits(empty_db):
    _migrate.upgrade(empty_db, "0015")
    with psycopg.connect(empty_db, autocommit=True) as conn:
        _fill_0008(conn, finished=2, queued=2)
        before = _jobs(conn)
    assert _migrate.upgrade(empty_db, "0016") == ("0015", "0016")
    with psycopg.connect(empty_db, autocommit=True) as conn:
        assert _jobs(conn) == before
        parent = conn.execute("SELECT pgjobs.enqueue('p')").fetchone()[0]
        child = conn.execute("SELECT pgjobs.enqueue('c')").fetchone()[0]
        conn.execute("UPDATE pgjobs.jobs_live SET status = 'blocked' WHERE id = %s", [child])
        conn.execute(
            "INSERT INTO pgjobs.job_dependencies (parent_id, job_id, always) VALUES (%s, %s, true)",
            [parent, child],
        )
        # 0014's one-argument function stays, for code of 0014.
        assert conn.execute(
            "SELECT pgjobs.pending_parents(ARRAY[%s]::bigint[])", [parent]
        ).fetchone() == ([parent],)
    import sqlalchemy.exc

    with pytest.raises(sqlalchemy.exc.DBAPIError, match="1 dependencies wait with always"):
        _downgrade(empty_db, "0015")
    with psycopg.connect(empty_db, autocommit=True) as conn:
        # The parent's cancel lets the always dependent run.
        conn.execute("SELECT pgjobs.cancel(%s)", [parent])
        assert conn.execute(
            "SELECT status::text FROM pgjobs.jobs WHERE id = %s", [child]
        ).fetchone() == ("queued",)
    _downgrade(empty_db, "0015")
    with psycopg.connect(empty_db, autocommit=True) as conn:
        assert conn.execute(
            "SELECT to_regprocedure('pgjobs.add_dependencies(bigint, bigint[], bigint[])'),"
            " to_regprocedure('pgjobs.pending_parents(bigint[], bigint[])')"
        ).fetchone() == (None, None)
        assert conn.execute(
            "SELECT count(*) FROM information_schema.columns"
            " WHERE table_schema = 'pgjobs' AND table_name = 'job_dependencies'"
            " AND column_name = 'always'"
        ).fetchone() == (0,)
        # 0014's functions are its own again: a cancelled parent cancels its dependent.
        first = conn.execute("SELECT pgjobs.enqueue('p')").fetchone()[0]
        second = conn.execute("SELECT pgjobs.enqueue('c')").fetchone()[0]
        conn.execute("UPDATE pgjobs.jobs_live SET status = 'blocked' WHERE id = %s", [second])
        conn.execute(
            "INSERT INTO pgjobs.job_dependencies (parent_id, job_id) VALUES (%s, %s)",
            [first, second],
        )
        conn.execute("SELECT pgjobs.cancel(%s)", [first])
        assert conn.execute(
            "SELECT status::text FROM pgjobs.jobs WHERE id = %s", [second]
        ).fetchone() == ("cancelled",)
    assert _migrate.upgrade(empty_db, "0016") == ("0015", "0016")


# -- 0017: keys take turns -----------------------------------------------------------

#: The fair turns' revision, and the one before it (the lead may renumber them).
TURNS = "0017"
BEFORE_TURNS = "0016"


def test_0017_adds_the_keyed_index_and_the_turns_and_downgrades(empty_db):
    _migrate.upgrade(empty_db, BEFORE_TURNS)
    with psycopg.connect(empty_db, autocommit=True) as conn:
        for key in ["a", "a", "a", "b", None]:
            conn.execute("SELECT pgjobs.enqueue('t', queue => 'q', key => %s)", [key])
        conn.execute("INSERT INTO pgjobs.queues (name, concurrency) VALUES ('limited', 2)")
    assert _migrate.upgrade(empty_db, TURNS) == (BEFORE_TURNS, TURNS)
    with psycopg.connect(empty_db, autocommit=True) as conn:
        # The new index holds queued jobs with a key, and no other; it is built
        # with the jobs queued before the upgrade, which take their turns.
        assert conn.execute(
            "SELECT indexdef LIKE '%%WHERE ((status = ''queued''::pgjobs.job_status)"
            " AND (key IS NOT NULL))' FROM pg_indexes WHERE indexname = 'jobs_live_key_fetch_idx'"
        ).fetchone() == (True,)
        (ids,) = conn.execute("SELECT ids FROM pgjobs.claim_keyed('q', 3, NULL)").fetchone()
        keys = [
            conn.execute("SELECT key FROM pgjobs.jobs_live WHERE id = %s", [i]).fetchone()[0]
            for i in ids
        ]
        assert sorted(keys, key=str) == sorted(["a", "b", None], key=str)
        # 0013's function is still there, for its workers during the upgrade.
        assert conn.execute(
            "SELECT ids FROM pgjobs.claim_within_limits('limited', 5)"
        ).fetchone() == ([],)
    _downgrade(empty_db, BEFORE_TURNS)
    with psycopg.connect(empty_db, autocommit=True) as conn:
        assert conn.execute("SELECT to_regclass('pgjobs.jobs_live_key_fetch_idx')").fetchone() == (
            None,
        )
        assert conn.execute(
            "SELECT count(*) FROM pg_proc WHERE proname IN ('claim_turns', 'claim_keyed')"
            " OR (proname = 'claim_within_limits' AND pronargs <> 2)"
        ).fetchone() == (0,)
    assert _migrate.upgrade(empty_db, TURNS) == (BEFORE_TURNS, TURNS)


# -- 0018: circuit breakers ------------------------------------------------------------

#: The breakers' revision, and the one before it (the lead may renumber them).
BREAKERS = "0018"
BEFORE_BREAKERS = "0017"

_CLAIM_BODY = (
    "SELECT pg_get_functiondef('pgjobs.claim_within_limits(text, integer)'::regprocedure),"
    " pg_get_functiondef("
    "'pgjobs.claim_within_limits(text, integer, integer, bigint, bigint[])'::regprocedure),"
    " pg_get_functiondef("
    "'pgjobs.claim_turns(text, integer, integer, integer, bigint, bigint[])'::regprocedure)"
)


def test_0018_adds_breakers_holds_them_in_the_limited_claim_and_downgrades(empty_db):
    _migrate.upgrade(empty_db, BEFORE_BREAKERS)
    with psycopg.connect(empty_db, autocommit=True) as conn:
        before = conn.execute(_CLAIM_BODY).fetchone()
        conn.execute("INSERT INTO pgjobs.queues (name, concurrency) VALUES ('q', 5)")
        held = conn.execute("SELECT pgjobs.enqueue('held', queue => 'q')").fetchone()[0]
        free = conn.execute("SELECT pgjobs.enqueue('free', queue => 'q')").fetchone()[0]
        keyed = [
            conn.execute(
                "SELECT pgjobs.enqueue(%s, queue => 'k', key => %s)", [task, key]
            ).fetchone()[0]
            for task, key in [("held", "a"), ("free", "a"), ("held", "b")]
        ]
    assert _migrate.upgrade(empty_db, BREAKERS) == (BEFORE_BREAKERS, BREAKERS)
    with psycopg.connect(empty_db, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO pgjobs.task_breakers (task, failures, cooldown, state)"
            " VALUES ('held', 1, 60, 'open')"
        )
        with pytest.raises(psycopg.errors.CheckViolation, match="task_breakers_failures_positive"):
            conn.execute("UPDATE pgjobs.task_breakers SET failures = 0")
        # The limited claims (both forms) and the keys' turns leave out the
        # open breaker's jobs.
        assert conn.execute("SELECT ids FROM pgjobs.claim_within_limits('q', 5)").fetchone() == (
            [free],
        )
        assert conn.execute(
            "SELECT ids FROM pgjobs.claim_within_limits('q', 5, NULL, NULL, '{}')"
        ).fetchone() == ([free],)
        assert conn.execute("SELECT ids FROM pgjobs.claim_keyed('k', 5, NULL)").fetchone() == (
            [keyed[1]],
        )
    _downgrade(empty_db, BEFORE_BREAKERS)
    with psycopg.connect(empty_db, autocommit=True) as conn:
        assert conn.execute(_CLAIM_BODY).fetchone() == before
        assert conn.execute("SELECT to_regclass('pgjobs.task_breakers')").fetchone() == (None,)
        assert conn.execute(
            "SELECT count(*) FROM pg_proc WHERE proname LIKE 'breakers%'"
            " AND pronamespace = 'pgjobs'::regnamespace"
        ).fetchone() == (0,)
        assert conn.execute("SELECT ids FROM pgjobs.claim_within_limits('q', 5)").fetchone() == (
            [held, free],
        )
    assert _migrate.upgrade(empty_db, BREAKERS) == (BEFORE_BREAKERS, BREAKERS)


# -- 0019: finished jobs counted per minute (the dashboard's chart) --------------

MINUTES = "0019"


def test_0019_counts_finished_jobs_per_minute_from_the_history_and_a_trigger_and_downgrades(
    empty_db,
):
    _migrate.upgrade(empty_db, "0018")
    with psycopg.connect(empty_db, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO pgjobs.jobs (task, queue, status, finished_at)"
            " SELECT 'old', 'q', 'succeeded', now() - interval '40 days' FROM generate_series(1, 2)"
        )
        conn.execute(
            "INSERT INTO pgjobs.jobs (task, queue, status, finished_at)"
            " SELECT 't', 'q', 'failed', date_trunc('minute', now()) - interval '1 hour'"
            " FROM generate_series(1, 3)"
        )
    assert _migrate.upgrade(empty_db, MINUTES) == ("0018", MINUTES)
    counted = (
        "SELECT task, status::text, jobs FROM pgjobs.finished_per_minute ORDER BY minute, task"
    )
    with psycopg.connect(empty_db, autocommit=True) as conn:
        # The history is counted by the migration (minutes for 2 days, hours for 31).
        assert conn.execute(counted).fetchall() == [("t", "failed", 3)]
        # Then each statement that finishes jobs adds to its minute's count.
        job = conn.execute("SELECT pgjobs.enqueue('t', queue => 'q')").fetchone()[0]
        conn.execute("SELECT pgjobs.cancel(%s)", [job])
        conn.execute(
            "INSERT INTO pgjobs.jobs (task, queue, status, finished_at)"
            " SELECT 't', 'q', 'failed', date_trunc('minute', now()) - interval '1 hour'"
        )
        assert conn.execute(counted).fetchall() == [("t", "failed", 4), ("t", "cancelled", 1)]
        # Switched off, nothing is counted.
        conn.execute("SET pgjobs.finished_counts = 'off'")
        conn.execute(
            "INSERT INTO pgjobs.jobs (task, queue, status, finished_at)"
            " SELECT 't', 'q', 'failed', date_trunc('minute', now()) - interval '1 hour'"
        )
        assert conn.execute(counted).fetchall() == [("t", "failed", 4), ("t", "cancelled", 1)]
        conn.execute("RESET pgjobs.finished_counts")
        assert conn.execute(
            "SELECT status::text, jobs FROM pgjobs.finished_per_hour ORDER BY hour, status"
        ).fetchall() in ([("failed", 4), ("cancelled", 1)], [("cancelled", 1), ("failed", 4)])
    _downgrade(empty_db, "0018")
    with psycopg.connect(empty_db, autocommit=True) as conn:
        assert conn.execute("SELECT to_regclass('pgjobs.finished_per_minute')").fetchone() == (
            None,
        )
        assert conn.execute(
            "SELECT tgname FROM pg_trigger WHERE tgrelid = 'pgjobs.job_history'::regclass"
            " AND NOT tgisinternal"
        ).fetchall() == [("webhooks_on_finish",)]
    assert _migrate.upgrade(empty_db, MINUTES) == ("0018", MINUTES)


# -- 0020: a statement on the view counts its finished jobs once ------------------

VIEW_COUNTS = "0020"

# What the current transaction wrote to a table (PostgreSQL's transaction-local statistics).
_WRITES = (
    "SELECT pg_stat_get_xact_tuples_inserted(%(t)s::regclass)"
    " + pg_stat_get_xact_tuples_updated(%(t)s::regclass)"
)


def test_0020_counts_a_statement_on_the_view_once_keeps_the_setting_and_downgrades(empty_db):
    _migrate.upgrade(empty_db, MINUTES)
    assert _migrate.upgrade(empty_db, VIEW_COUNTS) == (MINUTES, VIEW_COUNTS)
    per_status = (
        "SELECT status::text, sum(jobs)::int FROM pgjobs.finished_per_minute GROUP BY 1 ORDER BY 1"
    )
    with psycopg.connect(empty_db) as conn:
        conn.execute(
            "INSERT INTO pgjobs.jobs (task, queue) SELECT 't', 'q' FROM generate_series(1, 500)"
        )
        conn.commit()
        # 500 jobs cancelled by one statement: their minute's count is
        # written once (before, it was upserted 500 times in the transaction,
        # each update stepping over the versions the ones before left).
        conn.execute("UPDATE pgjobs.jobs SET status = 'cancelled' WHERE task = 't'")
        for table in ("pgjobs.finished_per_minute", "pgjobs.finished_per_hour"):
            assert conn.execute(_WRITES, {"t": table}).fetchone() == (1,), table
        conn.execute(
            "INSERT INTO pgjobs.jobs (task, queue, status)"
            " SELECT 't', 'q', 'succeeded' FROM generate_series(1, 300)"
        )
        assert conn.execute(_WRITES, {"t": "pgjobs.finished_per_minute"}).fetchone() == (2,)
        conn.commit()
        assert conn.execute(per_status).fetchall() == [("cancelled", 500), ("succeeded", 300)]
        assert conn.execute("SELECT count(*) FROM pgjobs.finished_uncounted").fetchone() == (0,)
        # After the view's statement the history's trigger counts again, at once.
        conn.execute(
            "INSERT INTO pgjobs.job_history (task, queue, status, finished_at)"
            " VALUES ('t', 'q', 'failed', now())"
        )
        assert conn.execute(per_status).fetchall() == [
            ("cancelled", 500),
            ("failed", 1),
            ("succeeded", 300),
        ]
        conn.rollback()

        # A statement that fails half-way leaves nothing behind: not the rows
        # it set aside, not the settings it changed.
        conn.execute("SAVEPOINT s")
        # (The second row's id is the first's: the view's trigger refuses it
        # after the first row is in the history.)
        with pytest.raises(psycopg.errors.UniqueViolation):
            conn.execute(
                "INSERT INTO pgjobs.jobs (id, task, status)"
                " VALUES (900001, 't', 'failed'), (900001, 't', 'failed')"
            )
        conn.execute("ROLLBACK TO SAVEPOINT s")
        assert conn.execute("SELECT count(*) FROM pgjobs.finished_uncounted").fetchone() == (0,)
        assert conn.execute(
            "SELECT coalesce(current_setting('pgjobs.jobs_view_depth', true), '')"
            " IN ('', '0'), coalesce(current_setting('pgjobs.finished_counts', true), '')"
        ).fetchone() == (True, "")
        conn.rollback()

        # `pgjobs.finished_counts = 'off'` still skips the counting, and stays off.
        conn.execute("SET pgjobs.finished_counts = 'off'")
        conn.execute("INSERT INTO pgjobs.jobs (task, queue, status) VALUES ('t', 'q', 'failed')")
        assert conn.execute("SHOW pgjobs.finished_counts").fetchone() == ("off",)
        conn.commit()
        assert conn.execute(per_status).fetchall() == [("cancelled", 500), ("succeeded", 300)]
    _downgrade(empty_db, MINUTES)
    with psycopg.connect(empty_db, autocommit=True) as conn:
        assert conn.execute("SELECT to_regclass('pgjobs.finished_uncounted')").fetchone() == (None,)
        assert conn.execute(
            "SELECT tgname FROM pg_trigger WHERE tgrelid IN ('pgjobs.job_history'::regclass,"
            " 'pgjobs.jobs'::regclass) AND NOT tgisinternal ORDER BY 1"
        ).fetchall() == [("count_finished",), ("jobs_write",), ("webhooks_on_finish",)]
        # Counted per row again, as 0019 did.
        conn.execute("INSERT INTO pgjobs.jobs (task, queue, status) VALUES ('t', 'q', 'failed')")
        assert conn.execute(per_status).fetchall() == [
            ("cancelled", 500),
            ("failed", 1),
            ("succeeded", 300),
        ]
    assert _migrate.upgrade(empty_db, VIEW_COUNTS) == (MINUTES, VIEW_COUNTS)


# -- 0021: the keys' turns plan the same whatever the statistics -------------------

TURNS_PLANS = "0021"
_TURNS = "pgjobs.claim_turns(text, integer, integer, integer, bigint, bigint[])"


def test_0021_changes_only_the_plans_of_the_keys_turns_and_downgrades_to_the_same_body(empty_db):
    _migrate.upgrade(empty_db, VIEW_COUNTS)
    definition = f"SELECT pg_get_functiondef('{_TURNS}'::regprocedure)"
    settings = f"SELECT proconfig FROM pg_proc WHERE oid = '{_TURNS}'::regprocedure"
    with psycopg.connect(empty_db, autocommit=True) as conn:
        before = conn.execute(definition).fetchone()[0]
    assert _migrate.upgrade(empty_db, TURNS_PLANS) == (VIEW_COUNTS, TURNS_PLANS)
    with psycopg.connect(empty_db, autocommit=True) as conn:
        after = conn.execute(definition).fetchone()[0]
        assert conn.execute(settings).fetchone() == (["enable_sort=off"],)
        assert "hashtext(j.key) >= khash AND hashtext(j.key) <= khash" in after
        assert "ORDER BY array_position(loose, l.id)" in after
        # The same turns: each key's oldest job, then one of the jobs without a key.
        conn.execute(
            "INSERT INTO pgjobs.jobs_live (task, args, key)"
            " SELECT 't', '{}', k FROM unnest(ARRAY['a', 'a', 'b', NULL, NULL]) AS k"
        )
        ids, _turn = conn.execute(
            "SELECT ids, turn FROM pgjobs.claim_turns('default', 3, NULL, NULL, NULL, '{}')"
        ).fetchone()
        assert sorted(ids) == [1, 3, 4]
    _downgrade(empty_db, VIEW_COUNTS)
    with psycopg.connect(empty_db, autocommit=True) as conn:
        assert conn.execute(definition).fetchone()[0] == before
        assert conn.execute(settings).fetchone() == (None,)
    assert _migrate.upgrade(empty_db, TURNS_PLANS) == (VIEW_COUNTS, TURNS_PLANS)
