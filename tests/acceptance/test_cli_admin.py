"""`python -m pgjobs enqueue / jobs / stats` run as a subprocess: output and exit codes."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.conftest import REPO


class Cli:
    """Runs `python -m pgjobs ...` against the test database."""

    def __init__(self, dsn: str) -> None:
        self.env = {
            **os.environ,
            "PGJOBS_DSN": dsn,
            "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
        }

    def __call__(
        self, *args: str, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "pgjobs", *args],
            capture_output=True,
            text=True,
            env=env or self.env,
            cwd=REPO,
            timeout=60,
        )

    def ok(self, *args: str) -> str:
        done = self(*args)
        assert done.returncode == 0, done.stderr
        return done.stdout

    def json(self, *args: str) -> object:
        return json.loads(self.ok(*args, "--json"))

    def fails(self, *args: str, env: dict[str, str] | None = None) -> str:
        """Run a command that must fail with one clear line on stderr and exit code 2."""
        done = self(*args, env=env)
        assert done.returncode == 2, (done.stdout, done.stderr)
        assert "Traceback" not in done.stderr
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1, done.stderr
        assert lines[0].startswith("pgjobs: error: ")
        return lines[0]


@pytest.fixture
def cli(dsn):
    return Cli(dsn)


def count(conn, where: str = "true") -> int:
    return conn.execute(f"SELECT count(*) FROM pgjobs.jobs WHERE {where}").fetchone()[0]


def test_enqueue_prints_the_new_id_and_writes_the_job(cli, conn):
    out = cli.ok(
        "enqueue",
        "any.task.name",
        "--args",
        '{"user_id": 42}',
        "--queue",
        "emails",
        "--priority",
        "high",
        "--max-attempts",
        "4",
        "--fingerprint",
        "u42",
    )
    (job_id,) = conn.execute("SELECT id FROM pgjobs.jobs").fetchone()
    assert out.strip() == f"enqueued job {job_id} (task 'any.task.name' on queue 'emails')"
    row = conn.execute(
        "SELECT task, args, queue, priority, max_attempts, fingerprint FROM pgjobs.jobs"
    ).fetchone()
    assert row == ("any.task.name", {"user_id": 42}, "emails", 1, 4, "u42")


def test_enqueue_json_and_delay(cli, conn):
    data = cli.json("enqueue", "later", "--delay", "600")
    assert data == {"id": data["id"], "task": "later", "queue": "default"}
    state = conn.execute(
        "SELECT state FROM pgjobs.job_states WHERE id = %s", (data["id"],)
    ).fetchone()
    assert state == ("scheduled",)


def test_enqueue_bad_input_writes_nothing(cli, conn):
    assert "--args is not valid JSON" in cli.fails("enqueue", "t", "--args", "{user_id: 1}")
    assert "must be a JSON object" in cli.fails("enqueue", "t", "--args", "[1]")
    assert "priority must be an integer from 0" in cli.fails("enqueue", "t", "--priority", "7")
    assert "delay must be" in cli.fails("enqueue", "t", "--delay", "-5")
    assert count(conn) == 0


def test_enqueue_with_an_app_checks_the_name_and_arguments(cli, conn):
    app = ("--app", "tests.apps.basic:app")
    line = cli.fails("enqueue", "recrod", "--args", '{"key": "k"}', *app)
    assert "unknown task 'recrod'" in line
    assert "registered tasks: arecord, asleepy, noop, record, sleepy" in line
    assert "missing a required argument: 'key'" in cli.fails("enqueue", "record", *app)
    assert "unexpected keyword" in cli.fails(
        "enqueue", "record", "--args", '{"key": "k", "extra": 1}', *app
    )
    assert count(conn) == 0
    data = cli.json("enqueue", "sleepy", "--args", '{"key": "k", "seconds": 0}', *app)
    # The task's own defaults apply: sleepy has max_attempts=5.
    row = conn.execute("SELECT task, max_attempts FROM pgjobs.jobs WHERE id = %s", (data["id"],))
    assert row.fetchone() == ("sleepy", 5)


def test_the_readme_enqueue_line_takes_a_short_task_name(cli, conn):
    # The README's line, with the README's module replaced by tests/apps/welcome.py.
    out = cli.ok(
        "enqueue", "send_welcome", "--args", '{"user_id": 42}', "--app", "tests.apps.welcome:app"
    )
    row = conn.execute("SELECT id, task, args, queue, max_attempts FROM pgjobs.jobs").fetchone()
    job_id, *stored = row
    # Stored under the full name, with the task's own defaults.
    assert stored == ["tests.apps.welcome.send_welcome", {"user_id": 42}, "emails", 5]
    assert out.strip() == (
        f"enqueued job {job_id} (task 'tests.apps.welcome.send_welcome' on queue 'emails')"
    )


def test_an_ambiguous_short_task_name_lists_the_candidates(cli, conn):
    line = cli.fails("enqueue", "cleanup", "--app", "tests.apps.welcome:app")
    assert "task name 'cleanup' is ambiguous" in line
    assert "reports.cleanup, tests.apps.welcome.cleanup" in line
    assert count(conn) == 0
    # The full name, or a longer tail, picks one.
    data = cli.json("enqueue", "reports.cleanup", "--app", "tests.apps.welcome:app")
    assert data["task"] == "reports.cleanup"
    data = cli.json("enqueue", "welcome.cleanup", "--app", "tests.apps.welcome:app")
    assert data["task"] == "tests.apps.welcome.cleanup"


def test_enqueue_duplicate_fingerprint(cli, conn):
    cli.ok("enqueue", "t", "--fingerprint", "once")
    line = cli.fails("enqueue", "t", "--fingerprint", "once")
    assert "already has fingerprint 'once'" in line
    assert "--skip-duplicate" in line
    out = cli.ok("enqueue", "t", "--fingerprint", "once", "--skip-duplicate")
    assert out.startswith("not enqueued")
    assert count(conn) == 1


def make_jobs(conn) -> dict[str, int]:
    """A queued job, a failed one with an error and traceback, and a running one."""
    ids = {}
    for name, columns in {
        "queued": "('send', 'emails', 'queued', 0, NULL, '[]')",
        "failed": "('resize', 'default', 'failed', 3, NULL, '[{\"attempt\": 3, \"type\": "
        '"ValueError", "message": "bad size", "at": "2026-01-02T03:04:05+00:00", '
        '"traceback": "Traceback (most recent call last):\\n  File \\"app.py\\", line 9\\n'
        "ValueError: bad size\\n\"}]')",
        "running": "('resize', 'default', 'running', 1, 1, '[]')",
    }.items():
        ids[name] = conn.execute(
            "INSERT INTO pgjobs.jobs (task, queue, status, attempts, worker_id, errors)"
            f" VALUES {columns} RETURNING id"
        ).fetchone()[0]
    return ids


def test_jobs_list_table_and_json(cli, conn):
    ids = make_jobs(conn)
    lines = cli.ok("jobs", "list").splitlines()
    assert lines[0].split() == [
        "id",
        "queue",
        "task",
        "status",
        "priority",
        "attempts",
        "run_at",
        "created_at",
        "progress",
        "last_error",
    ]
    body = [line.split() for line in lines[2:]]
    assert [int(r[0]) for r in body] == [ids["running"], ids["failed"], ids["queued"]]
    failed = body[1]
    assert failed[1:6] == ["default", "resize", "failed", "2", "3/3"]
    assert failed[-1] == "ValueError"
    # A running job's latest progress report is on its line.
    conn.execute(
        'UPDATE pgjobs.jobs_live SET progress = \'{"done": 2, "total": 5, "message": "two"}\''
        " WHERE id = %s",
        (ids["running"],),
    )
    running = cli.ok("jobs", "list").splitlines()[2]
    assert running.split()[-2:] == ["2/5", "two"]

    data = cli.json("jobs", "list", "--status", "failed")
    assert [(j["id"], j["state"], j["last_error_type"]) for j in data] == [
        (ids["failed"], "failed", "ValueError")
    ]
    assert [j["id"] for j in cli.json("jobs", "list", "--queue", "emails")] == [ids["queued"]]
    assert [j["id"] for j in cli.json("jobs", "list", "--task", "resize", "--limit", "1")] == [
        ids["running"]
    ]
    assert cli.ok("jobs", "list", "--task", "nothing").strip() == "no jobs match"


def test_jobs_list_tells_how_to_get_the_next_page(cli, conn):
    ids = make_jobs(conn)
    done = cli("jobs", "list", "--limit", "2")
    assert done.returncode == 0
    assert f"--before {ids['failed']}" in done.stderr
    rest = cli.json("jobs", "list", "--before", str(ids["failed"]))
    assert [j["id"] for j in rest] == [ids["queued"]]


def test_jobs_show_every_field_and_the_traceback(cli, conn):
    ids = make_jobs(conn)
    out = cli.ok("jobs", "show", str(ids["failed"]))
    assert f"id:           {ids['failed']}" in out
    assert "status:       failed" in out
    assert "attempts:     3/3" in out
    assert "error 1: attempt 3 at 2026-01-02 03:04:05Z" in out
    assert "  ValueError: bad size" in out
    assert '      File "app.py", line 9' in out

    data = cli.json("jobs", "show", str(ids["failed"]))
    assert data["state"] == "failed"
    assert data["errors"][0]["traceback"].startswith("Traceback")
    assert {"args", "meta", "result", "run_at", "created_at", "worker_id"} <= set(data)


def test_jobs_show_unknown_id(cli):
    assert "no job with id 9999" in cli.fails("jobs", "show", "9999")


def test_jobs_retry_and_cancel_one(cli, conn):
    ids = make_jobs(conn)
    assert cli.ok("jobs", "retry", str(ids["failed"])).strip() == (
        f"job {ids['failed']} is queued to run again"
    )
    assert cli.json("jobs", "cancel", str(ids["queued"])) == {
        "id": ids["queued"],
        "status": "cancelled",
    }
    rows = dict(conn.execute("SELECT id, CAST(status AS text) FROM pgjobs.jobs").fetchall())
    assert rows == {ids["failed"]: "queued", ids["queued"]: "cancelled", ids["running"]: "running"}


def test_jobs_retry_and_cancel_errors(cli, conn):
    ids = make_jobs(conn)
    line = cli.fails("jobs", "retry", str(ids["running"]))
    assert f"job {ids['running']} is running, only failed, cancelled or queued" in line
    refused = cli.fails("jobs", "cancel", str(ids["failed"]))
    assert "only queued or running jobs can be cancelled" in refused
    assert "no job with id 777" in cli.fails("jobs", "retry", "777")
    assert "no job with id 777" in cli.fails("jobs", "cancel", "777")
    assert "not both" in cli.fails("jobs", "retry", str(ids["failed"]), "--task", "resize")
    assert "give a job id, or filters" in cli.fails("jobs", "cancel")
    status = conn.execute(
        "SELECT CAST(status AS text) FROM pgjobs.jobs WHERE id = %s", (ids["running"],)
    ).fetchone()
    assert status == ("running",)


def test_bulk_retry_and_cancel(cli, conn):
    conn.execute(
        "INSERT INTO pgjobs.jobs (task, queue, status, attempts) VALUES"
        " ('resize', 'default', 'failed', 3), ('resize', 'images', 'failed', 3),"
        " ('send', 'default', 'failed', 3), ('send', 'emails', 'queued', 0),"
        " ('send', 'emails', 'queued', 0), ('send', 'other', 'queued', 0)"
    )
    out = cli.ok("jobs", "retry", "--status", "failed", "--task", "resize")
    assert out.strip() == "retried 2 jobs (default: 1, images: 1)"
    assert count(conn, "status = 'failed'") == 1
    assert cli.json("jobs", "cancel", "--queue", "emails") == {
        "cancelled": 2,
        "queues": {"emails": 2},
    }
    assert count(conn, "status = 'cancelled'") == 2
    assert cli.ok("jobs", "cancel", "--queue", "emails").strip() == "cancelled 0 jobs"


def test_stats_table_and_json(cli, conn):
    conn.execute(
        "INSERT INTO pgjobs.jobs (task, queue, status, run_at) VALUES"
        " ('t', 'default', 'queued', now() - interval '5 minutes'),"
        " ('t', 'default', 'queued', now() + interval '1 hour'),"
        " ('t', 'emails', 'succeeded', now()), ('t', 'emails', 'failed', now())"
    )
    conn.execute(
        "INSERT INTO pgjobs.workers (host, pid, queues, concurrency)"
        " VALUES ('h', 1, '{default}', 4)"
    )
    lines = cli.ok("stats").splitlines()
    assert lines[0].split() == [
        "queue",
        "available",
        "scheduled",
        "running",
        "succeeded",
        "failed",
        "cancelled",
        "oldest_waiting",
        "paused",
    ]
    default = lines[2].split()
    assert default[:7] == ["default", "1", "1", "0", "0", "0", "0"]
    assert default[7].startswith("5m")
    assert lines[3].split() == ["emails", "0", "0", "0", "1", "1", "0"]
    assert lines[-1] == "live workers: 1"

    data = cli.json("stats")
    assert data["live_workers"] == 1
    by_queue = {q["queue"]: q for q in data["queues"]}
    assert by_queue["emails"]["failed"] == 1
    assert 300 <= by_queue["default"]["oldest_available_seconds"] < 600


def test_a_bad_dsn_is_one_line_not_a_traceback(cli):
    refused = "postgresql://postgres@127.0.0.1:1/nowhere"
    line = cli.fails("stats", "--dsn", refused)
    assert "cannot connect to PostgreSQL at 'postgresql://postgres@127.0.0.1:1/nowhere'" in line
    assert "PGJOBS_DSN" in line
    env = {**cli.env, "PGJOBS_DSN": refused}
    assert "cannot connect" in cli.fails("jobs", "list", env=env)
    assert "cannot connect" in cli.fails("enqueue", "t", env=env)
    no_dsn = {k: v for k, v in cli.env.items() if k not in ("PGJOBS_DSN", "DATABASE_URL")}
    assert "no database configured" in cli.fails("jobs", "show", "1", env=no_dsn)


def test_a_malformed_dsn_is_not_a_traceback(cli):
    done = cli("jobs", "list", "--dsn", "host='unterminated")
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert "malformed DSN" in done.stderr


def test_jobs_show_a_running_jobs_progress_and_cancel_request(cli, conn):
    ids = make_jobs(conn)
    conn.execute(
        'UPDATE pgjobs.jobs_live SET progress = \'{"done": 3, "total": 10, "message": "m"}\''
        " WHERE id = %s",
        (ids["running"],),
    )
    out = cli.ok("jobs", "cancel", str(ids["running"]))
    assert f"job {ids['running']} is running: its worker was asked to stop it" in out
    shown = cli.ok("jobs", "show", str(ids["running"]))
    assert "progress:     3/10 m" in shown
    assert "cancel:       asked by cli" in shown
    data = cli.json("jobs", "show", str(ids["running"]))
    assert data["progress"] == {"done": 3, "total": 10, "message": "m"}
    assert data["cancelled_by"].startswith("cli")
