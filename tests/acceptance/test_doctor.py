"""`python -m pgjobs doctor` as a subprocess: its exit codes, JSON, and an unreachable database."""

from __future__ import annotations

import json
import secrets

import psycopg
import pytest
from psycopg.conninfo import make_conninfo

from tests.acceptance.test_cli_admin import Cli


@pytest.fixture
def cli(dsn):
    return Cli(dsn)


def _floor(conn: psycopg.Connection[tuple[object, ...]]) -> int:
    """The exit code of a healthy database here: 2 when the test server runs without autovacuum."""
    row = conn.execute("SELECT current_setting('autovacuum') = 'on'").fetchone()
    assert row is not None
    return 0 if row[0] else 2


def test_exit_codes_follow_the_worst_finding(cli, conn):
    floor = _floor(conn)
    healthy = cli("doctor")
    assert healthy.returncode == floor, healthy.stdout + healthy.stderr
    assert healthy.stdout.splitlines()[0].startswith("OK    migrations = ")

    # A warning: a job running on a worker that is gone.
    conn.execute(
        "INSERT INTO pgjobs.jobs (task, status, worker_id, started_at)"
        " VALUES ('t', 'running', 999, now())"
    )
    warned = cli("doctor")
    assert warned.returncode == max(floor, 1), warned.stdout
    assert "WARN  running on dead workers = 1" in warned.stdout

    # A failure: a due job that no live worker serves.
    conn.execute("INSERT INTO pgjobs.jobs (task, queue) VALUES ('t', 'nobody')")
    failed = cli("doctor", "--json")
    assert failed.returncode == 2, failed.stderr
    findings = json.loads(failed.stdout)
    assert set(findings[0]) == {"check", "verdict", "value", "detail", "fix"}
    nobody = next(f for f in findings if f["check"] == "queue nobody")
    assert nobody["verdict"] == "fail"
    assert nobody["fix"].startswith("start a worker with --queues nobody")


def test_an_unreachable_database_is_one_line_and_exit_2(cli):
    line = cli.fails("doctor", "--dsn", "postgresql://postgres@127.0.0.1:1/nowhere")
    assert "cannot connect to PostgreSQL" in line


def test_an_unmigrated_database_is_one_line_and_exit_2(cli, server_dsn):
    name = f"pgjobs_doctor_{secrets.token_hex(4)}"
    with psycopg.connect(server_dsn, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        line = cli.fails("doctor", "--dsn", make_conninfo(server_dsn, dbname=name))
    finally:
        with psycopg.connect(server_dsn, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    assert "no pgjobs schema" in line
