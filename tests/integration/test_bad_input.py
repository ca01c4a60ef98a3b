"""Hostile input: each value is stored and delivered intact, or refused at enqueue with a reason."""

from __future__ import annotations

import math
import os
import secrets
import subprocess
import sys
from typing import Any

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from psycopg.conninfo import make_conninfo

import pgjobs
from pgjobs._serde import MAX_DEPTH
from pgjobs.errors import ArgumentsError, ConfigurationError
from pgjobs.testing import drain
from tests.conftest import REPO

Conn = psycopg.Connection[Any]


@pytest.fixture
def app(dsn: str) -> Any:
    application = pgjobs.App(dsn)
    yield application
    application.close()


def rows(conn: Conn, sql: str, *params: object) -> list[tuple[Any, ...]]:
    return conn.execute(sql, params).fetchall()


def count_jobs(conn: Conn) -> int:
    return int(rows(conn, "SELECT count(*) FROM pgjobs.jobs")[0][0])


def echo_app(app: pgjobs.App) -> tuple[Any, dict[str, Any]]:
    """A task that keeps what it was handed, by key."""
    received: dict[str, Any] = {}

    @app.task(name="echo")
    def echo(key: str, value: Any) -> None:
        received[key] = value

    return echo, received


# -- arguments ---------------------------------------------------------------

# Anything JSON-like, plus the values that trip jsonb up: NUL characters,
# lone surrogates, NaN and the infinities, huge floats, non-string keys,
# objects that are not JSON at all. Tuples are left out on purpose: JSON has
# no tuple, and a tuple comes back as a list (documented).
_nasty_text = st.text(
    alphabet=st.characters(codec=None, exclude_categories=()), max_size=20
) | st.sampled_from(["\x00", "a\x00b", "\ud800", "'; DROP TABLE pgjobs.jobs; --", "%s", ":key"])
_scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.sampled_from([1e16, -1.5e300, 5e-324, -0.0, 1e15, 0.1 + 0.2])
    | _nasty_text
    | st.builds(object)
    | st.frozensets(st.integers(), max_size=2)
    | st.binary(max_size=4)
)
_values = st.recursive(
    _scalars,
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(_nasty_text | st.integers() | st.booleans(), children, max_size=4)
    ),
    max_leaves=12,
)


@settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(values=st.lists(_values, min_size=1, max_size=8))
def test_any_value_round_trips_through_a_worker_or_is_refused(
    app: pgjobs.App, conn: Conn, values: list[Any]
) -> None:
    conn.execute("DELETE FROM pgjobs.jobs")
    echo, received = echo_app(app)
    try:
        accepted = {}
        for index, value in enumerate(values):
            key = f"v{index}"
            try:
                spec = echo.job(key, value)
            except ArgumentsError as exc:
                refusal = str(exc)
                assert "argument" in refusal
                continue
            app.enqueue_spec(spec)
            accepted[key] = value
        assert count_jobs(conn) == len(accepted)  # a refused value wrote nothing
        drain(app, concurrency=4)
        assert received == accepted
        statuses = rows(conn, "SELECT DISTINCT status::text FROM pgjobs.jobs")
        assert statuses in ([], [("succeeded",)])
    finally:
        app.tasks.clear()


def _nested(depth: int) -> Any:
    value: Any = "bottom"
    for level in range(depth):
        value = [value] if level % 2 else {"d": value}
    return value


@pytest.mark.parametrize(
    "value",
    [
        _nested(MAX_DEPTH),
        "x" * 1_000_000,
        "é✓🚀 \t\n\\\"'",
        {"": "", " ": [None, True, False, 0, -1, 2**70, 1.5, 1e-300, 123456789012345.6]},
        "'; DROP TABLE pgjobs.jobs; --",
    ],
    ids=["deepest-allowed", "huge-string", "unicode", "odd-json", "sql-injection"],
)
def test_accepted_values_arrive_intact(app: pgjobs.App, conn: Conn, value: Any) -> None:
    echo, received = echo_app(app)
    echo.enqueue("one", value)
    drain(app)
    assert received == {"one": value}
    assert rows(conn, "SELECT status::text FROM pgjobs.jobs") == [("succeeded",)]


class _Opaque:
    pass


@pytest.mark.parametrize(
    ("value", "needle"),
    [
        (_nested(MAX_DEPTH + 1), "nested more than"),
        ("a\x00b", "NUL character"),
        ({"k\x00": 1}, "key with a NUL"),
        (math.nan, "not JSON-serialisable"),
        (math.inf, "not JSON-serialisable"),
        (-math.inf, "not JSON-serialisable"),
        (1e16, "stores as an integer"),
        ([1.5e300], "stores as an integer"),
        ({1: "a"}, "non-string key"),
        ({(1, 2): "a"}, "non-string key"),
        (_Opaque(), "not JSON-serialisable"),
        ({1, 2}, "not JSON-serialisable"),
        (b"bytes", "not JSON-serialisable"),
        ("\ud800", "not valid Unicode"),
        ("x" * (1024 * 1024), "over the limit of 1048576"),
    ],
    ids=lambda v: type(v).__name__ if not isinstance(v, str) or len(v) < 20 else "big",
)
def test_bad_values_are_refused_before_anything_is_written(
    app: pgjobs.App, conn: Conn, value: Any, needle: str
) -> None:
    echo, _ = echo_app(app)
    with pytest.raises(ArgumentsError, match=needle):
        echo.enqueue("bad", value)
    with pytest.raises(ArgumentsError, match=needle):
        app.enqueue("echo", {"key": "bad", "value": value})
    assert count_jobs(conn) == 0


def test_a_self_referencing_value_is_refused(app: pgjobs.App, conn: Conn) -> None:
    loop: list[Any] = []
    loop.append(loop)
    echo, _ = echo_app(app)
    with pytest.raises(ArgumentsError, match="nested more than"):
        echo.enqueue("loop", loop)
    assert count_jobs(conn) == 0


def test_meta_gets_the_same_checks(app: pgjobs.App, conn: Conn) -> None:
    echo, _ = echo_app(app)
    for meta, needle in [({"trace": "a\x00b"}, "NUL"), ({"n": math.nan}, "not JSON")]:
        with pytest.raises(ArgumentsError, match=needle):
            echo.options(meta=meta).enqueue("m", 1)
    assert count_jobs(conn) == 0


def test_payload_limit_is_configurable(dsn: str, conn: Conn) -> None:
    small = pgjobs.App(dsn, max_payload_bytes=100)
    try:
        echo, _ = echo_app(small)
        echo.enqueue("fits", "x" * 50)
        with pytest.raises(ArgumentsError, match=r"over the limit of 100.*max_payload_bytes"):
            echo.enqueue("too-big", "x" * 100)
    finally:
        small.close()
    assert count_jobs(conn) == 1


# -- names -------------------------------------------------------------------

ODD_NAMES = [
    "'; DROP TABLE pgjobs.jobs; --",
    "quo\"te's",
    "队列-ü-🚀",
    "%s %(x)s :queue $1",
    "back\\slash",
    "x" * 128,
]


@pytest.mark.parametrize("name", ODD_NAMES, ids=range(len(ODD_NAMES)))
def test_odd_queue_and_task_names_are_only_data(app: pgjobs.App, conn: Conn, name: str) -> None:
    ran: list[str] = []

    @app.task(name=name, queue=name)
    def odd(x: str) -> None:
        ran.append(x)

    odd.enqueue("hi")
    drain(app, queues=(name,))
    assert ran == ["hi"]
    assert rows(conn, "SELECT queue, task, status::text FROM pgjobs.jobs") == [
        (name, name, "succeeded")
    ]
    assert rows(conn, "SELECT to_regclass('pgjobs.jobs') IS NOT NULL") == [(True,)]
    # The SQL surface takes them as values too.
    conn.execute('SELECT pgjobs.enqueue(%s, \'{"x": "sql"}\', %s)', (name, name))
    drain(app, queues=(name,))
    assert ran == ["hi", "sql"]


@pytest.mark.parametrize("queue", ["", "q" * 129, "a\x00b", 5])
def test_unusable_queue_names_are_refused(app: pgjobs.App, conn: Conn, queue: Any) -> None:
    @app.task(name="plain")
    def plain() -> None:
        pass

    with pytest.raises(ConfigurationError, match="queue name"):
        plain.options(queue=queue).enqueue()
    with pytest.raises(ConfigurationError, match="queue name"):
        app.task(name="other", queue=queue)(lambda: None)
    assert count_jobs(conn) == 0


@pytest.mark.parametrize("name", ["t" * 256, "a\x00b"], ids=["too-long", "nul"])
def test_unusable_task_names_write_nothing(app: pgjobs.App, conn: Conn, name: str) -> None:
    # Refused when the task is registered...
    with pytest.raises(ConfigurationError, match="is not usable"):
        app.task(name=name)(lambda: None)
    # ...and, by name on a non-strict App (a producer for tasks defined
    # elsewhere), by PostgreSQL's check or by psycopg: never stored.
    producer = pgjobs.App(app.dsn, strict=False)
    try:
        with pytest.raises((psycopg.errors.CheckViolation, psycopg.DataError)):
            producer.enqueue(name, {})
    finally:
        producer.close()
    assert count_jobs(conn) == 0


# -- rows written by hand ----------------------------------------------------


def test_malformed_rows_fail_clearly_and_the_worker_goes_on(app: pgjobs.App, conn: Conn) -> None:
    ran: list[int] = []

    @app.task(name="good")
    def good(n: int) -> None:
        ran.append(n)

    @app.task(name="nul_error", max_attempts=1)
    def nul_error() -> None:
        raise ValueError("bad byte \x00 in input")

    class UnprintableError(Exception):
        def __str__(self) -> str:
            raise RuntimeError("no")

    @app.task(name="unprintable", max_attempts=1)
    def unprintable() -> None:
        raise UnprintableError

    @app.task(name="nul_result")
    def nul_result() -> str:
        return "has \x00 inside"

    # The schema itself refuses some shapes.
    for bad in ["'[1, 2]'", "'\"text\"'", "'null'"]:
        with pytest.raises(psycopg.errors.CheckViolation):
            conn.execute(f"INSERT INTO pgjobs.jobs (task, args) VALUES ('good', {bad}::jsonb)")
    with pytest.raises(psycopg.errors.CheckViolation):
        conn.execute("INSERT INTO pgjobs.jobs (task, priority) VALUES ('good', 9)")
    # These the worker must cope with.
    hand = {
        "unknown-task": "('no.such.task', '{}')",
        "unknown-arg": "('good', '{\"n\": 1, \"extra\": 2}')",
        "missing-arg": "('good', '{}')",
        "nul-error": "('nul_error', '{}')",
        "unprintable": "('unprintable', '{}')",
        "nul-result": "('nul_result', '{}')",
    }
    ids = {
        label: conn.execute(
            "INSERT INTO pgjobs.jobs (task, args, max_attempts)"
            f" SELECT task, args::jsonb, 1 FROM (VALUES {values}) AS v (task, args) RETURNING id"
        ).fetchone()[0]
        for label, values in hand.items()
    }
    good.enqueue(7)
    drain(app, concurrency=2)
    assert ran == [7]  # the worker kept working
    outcome = {
        label: rows(
            conn,
            "SELECT status::text, errors->-1->>'type', errors->-1->>'message'"
            " FROM pgjobs.jobs WHERE id = %s",
            job_id,
        )[0]
        for label, job_id in ids.items()
    }
    assert outcome["unknown-task"][:2] == ("failed", "pgjobs.errors.UnknownTaskError")
    assert "unknown task 'no.such.task'" in outcome["unknown-task"][2]
    assert outcome["unknown-arg"][:2] == ("failed", "pgjobs.errors.ArgumentsError")
    assert "['extra']" in outcome["unknown-arg"][2]
    assert outcome["missing-arg"][:2] == ("failed", "pgjobs.errors.ArgumentsError")
    assert outcome["nul-error"] == ("failed", "ValueError", "bad byte \\x00 in input")
    assert outcome["unprintable"][:2] == ("failed", "RuntimeError")
    assert "UnprintableError raised by the handler" in outcome["unprintable"][2]
    assert outcome["nul-result"] == ("succeeded", None, None)
    assert rows(conn, "SELECT result FROM pgjobs.jobs WHERE id = %s", ids["nul-result"]) == [
        (None,)
    ]
    assert rows(conn, "SELECT count(*) FROM pgjobs.jobs WHERE status = 'running'") == [(0,)]


@pytest.mark.parametrize(
    ("function", "status", "needle"),
    [
        ("retry", "running", "only failed, cancelled or queued jobs can be retried"),
        ("retry", "succeeded", "only failed, cancelled or queued jobs can be retried"),
        # (a running job is asked to stop: tests/integration/test_cancel_running.py)
        ("cancel", "succeeded", "only queued or running jobs can be cancelled"),
        ("cancel", "failed", "only queued or running jobs can be cancelled"),
        ("cancel", "cancelled", "only queued or running jobs can be cancelled"),
    ],
)
def test_sql_functions_refuse_invalid_transitions(
    conn: Conn, function: str, status: str, needle: str
) -> None:
    worker = "1" if status == "running" else "NULL"
    job_id = conn.execute(
        "INSERT INTO pgjobs.jobs (task, status, worker_id, attempts)"
        f" VALUES ('t', '{status}', {worker}, 1) RETURNING id"
    ).fetchone()[0]
    before = rows(conn, "SELECT * FROM pgjobs.jobs WHERE id = %s", job_id)
    with pytest.raises(psycopg.errors.ObjectNotInPrerequisiteState, match=needle):
        conn.execute(f"SELECT pgjobs.{function}(%s)", (job_id,))
    assert rows(conn, "SELECT * FROM pgjobs.jobs WHERE id = %s", job_id) == before
    for missing in (job_id + 1000, None):
        with pytest.raises(psycopg.errors.NoDataFound, match="no job with id"):
            conn.execute(f"SELECT pgjobs.{function}(%s)", (missing,))


# -- operator mistakes -------------------------------------------------------


def run_cli(*args: str, dsn: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PYTHONPATH": str(REPO)}
    if dsn:
        env["PGJOBS_DSN"] = dsn
    return subprocess.run(
        [sys.executable, "-m", "pgjobs", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        cwd=REPO,
        check=False,
    )


@pytest.fixture
def scratch_db(server_dsn: str) -> Any:
    """A database of this test's own, dropped afterwards."""
    name = f"pgjobs_bad_{secrets.token_hex(4)}"
    with psycopg.connect(server_dsn, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    yield make_conninfo(server_dsn, dbname=name)
    with psycopg.connect(server_dsn, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _set_revision(dsn: str, revision: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("UPDATE pgjobs.alembic_version SET version_num = %s", (revision,))


@pytest.mark.slow  # a database of its own, migrated, and a worker process
@pytest.mark.parametrize(
    ("revision", "needle"),
    [
        ("9999", "migrated by a newer pgjobs"),  # old code, newer schema outside its window
        ("0001", "Run `python -m pgjobs migrate`"),  # new code, older schema
    ],
)
def test_worker_and_schema_of_different_versions_say_what_to_do(
    scratch_db: str, revision: str, needle: str
) -> None:
    assert run_cli("migrate", dsn=scratch_db).returncode == 0
    _set_revision(scratch_db, revision)
    result = run_cli("worker", "tests.apps.basic:app", dsn=scratch_db)
    assert result.returncode == 2
    assert needle in result.stderr
    assert "Traceback" not in result.stderr


def test_migrate_against_a_newer_schema_says_upgrade_pgjobs(scratch_db: str) -> None:
    assert run_cli("migrate", dsn=scratch_db).returncode == 0
    _set_revision(scratch_db, "9999")
    result = run_cli("migrate", dsn=scratch_db)
    assert result.returncode == 2
    assert "upgrade the pgjobs package" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("dsn", "needle"),
    [
        ("postgresql://nobody@127.0.0.1:1/none", "cannot connect to PostgreSQL"),
        ("postgresql://postgres@127.0.0.1:5432/no_such_database_here", "cannot connect"),
        ("host='unterminated", "malformed DSN"),
        ("mysql://root@localhost/db", "malformed DSN"),
    ],
)
def test_migrate_with_a_wrong_dsn_is_one_clear_line(dsn: str, needle: str) -> None:
    result = run_cli("migrate", dsn=dsn)
    assert result.returncode == 2
    assert needle in result.stderr
    assert "Traceback" not in result.stderr


def test_a_user_without_create_permission_gets_a_clear_message(
    server_dsn: str, scratch_db: str
) -> None:
    role = f"pgjobs_limited_{secrets.token_hex(3)}"
    with psycopg.connect(scratch_db, autocommit=True) as admin:
        admin.execute(f'CREATE ROLE "{role}" LOGIN')
        # PostgreSQL 15+ already denies CREATE on the database to PUBLIC; say it anyway.
        admin.execute(f'REVOKE CREATE ON DATABASE "{admin.info.dbname}" FROM PUBLIC')
    try:
        limited = make_conninfo(scratch_db, user=role)
        result = run_cli("migrate", dsn=limited)
        assert result.returncode == 2, result
        assert "may not create the pgjobs schema" in result.stderr
        assert "pgjobs migrate --sql" in result.stderr
        assert "Traceback" not in result.stderr
        # A worker pointed there is told to migrate, not shown a traceback.
        result = run_cli("worker", "tests.apps.basic:app", dsn=limited)
        assert result.returncode == 2
        assert "python -m pgjobs migrate" in result.stderr
    finally:
        with psycopg.connect(scratch_db, autocommit=True) as db:
            db.execute(f'DROP OWNED BY "{role}"')
        with psycopg.connect(server_dsn, autocommit=True) as admin:
            admin.execute(f'DROP ROLE IF EXISTS "{role}"')
