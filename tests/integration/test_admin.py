"""The operator functions of pgjobs._admin, sync and async, against a real PostgreSQL."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import secrets
import subprocess
import sys
from typing import Any

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import make_conninfo
from psycopg.types.json import Jsonb

import pgjobs
from pgjobs import _admin
from pgjobs._admin import JobFilter
from pgjobs._names import WAKE_CHANNEL
from pgjobs.errors import (
    ArgumentsError,
    ConfigurationError,
    InvalidTransitionError,
    JobNotFoundError,
    SchemaVersionError,
    UnknownTaskError,
)
from pgjobs.testing import drain
from tests.conftest import REPO

NOW = dt.datetime.now(dt.UTC)
HOUR = dt.timedelta(hours=1)


class Admin:
    """Calls one _admin function by name, through its sync or its async twin."""

    def __init__(self, dsn: str, flavour: str) -> None:
        self.dsn = dsn
        self.flavour = flavour

    def __call__(self, name: str, *args: Any, **kwargs: Any) -> Any:
        if self.flavour == "sync":
            with psycopg.connect(self.dsn, autocommit=True) as conn:
                return getattr(_admin, name)(conn, *args, **kwargs)

        async def call() -> Any:
            async with await psycopg.AsyncConnection.connect(self.dsn, autocommit=True) as conn:
                return await getattr(_admin, f"{name}_async")(conn, *args, **kwargs)

        return asyncio.run(call())


@pytest.fixture(params=["sync", "async"])
def admin(request, dsn):
    return Admin(dsn, request.param)


def add_job(conn, **columns: Any) -> int:
    """Insert a job in any state, straight into the table."""
    columns.setdefault("task", "t")
    if columns.get("status") == "running":
        columns.setdefault("worker_id", 1)
    values = [Jsonb(v) if isinstance(v, dict | list) else v for v in columns.values()]
    query = sql.SQL("INSERT INTO pgjobs.jobs ({}) VALUES ({}) RETURNING id").format(
        sql.SQL(", ").join(map(sql.Identifier, columns)),
        sql.SQL(", ").join(sql.Placeholder() * len(columns)),
    )
    return conn.execute(query, values).fetchone()[0]


def error(kind: str = "ValueError", attempt: int = 1) -> dict[str, Any]:
    return {
        "attempt": attempt,
        "type": kind,
        "message": "boom",
        "traceback": f"Traceback (most recent call last):\n  ...\n{kind}: boom\n",
        "at": NOW.isoformat(),
    }


def one(conn, query: str, *params: Any) -> tuple[Any, ...]:
    return conn.execute(query, params).fetchone()


@pytest.fixture
def zoo(conn) -> dict[str, int]:
    """One job in each state, inserted oldest first."""
    return {
        "queued": add_job(conn, task="a"),
        "scheduled": add_job(conn, task="a", queue="emails", run_at=NOW + HOUR),
        "retrying": add_job(conn, task="b", attempts=1, errors=[error("KeyError")]),
        "running": add_job(conn, task="b", status="running", attempts=1),
        "succeeded": add_job(conn, task="a", status="succeeded", attempts=2, errors=[error()]),
        "failed": add_job(conn, task="b", status="failed", attempts=3, errors=[error("OSError")]),
        "cancelled": add_job(conn, task="a", queue="emails", status="cancelled"),
    }


# -- list ------------------------------------------------------------------


def test_list_is_newest_first_with_derived_states(admin, zoo):
    jobs = admin("list_jobs")
    assert [j.id for j in jobs] == sorted(zoo.values(), reverse=True)
    assert {j.id: j.state for j in jobs} == {v: k for k, v in zoo.items()}
    by_state = {j.state: j for j in jobs}
    assert by_state["scheduled"].status == "queued"
    assert by_state["retrying"].status == "queued"
    # The last error's type shows where it explains the state, not on a success.
    assert {j.state: j.last_error_type for j in jobs if j.last_error_type} == {
        "failed": "OSError",
        "retrying": "KeyError",
    }
    failed = by_state["failed"]
    assert (failed.task, failed.queue, failed.attempts, failed.max_attempts) == (
        "b",
        "default",
        3,
        3,
    )


@pytest.mark.parametrize(
    ("where", "expected"),
    [
        (JobFilter(status="failed"), ["failed"]),
        (JobFilter(status="queued"), ["retrying", "scheduled", "queued"]),
        (JobFilter(status="scheduled"), ["scheduled"]),
        (JobFilter(status="retrying"), ["retrying"]),
        (JobFilter(queue="emails"), ["cancelled", "scheduled"]),
        (JobFilter(task="b"), ["failed", "running", "retrying"]),
        (JobFilter(task="a", status="queued"), ["scheduled", "queued"]),
        (JobFilter(queue="nowhere"), []),
    ],
)
def test_list_filters(admin, zoo, where, expected):
    assert [j.id for j in admin("list_jobs", where)] == [zoo[s] for s in expected]


def test_list_pages_by_keyset(admin, conn):
    ids = [add_job(conn) for _ in range(5)]
    first = admin("list_jobs", JobFilter(limit=2))
    assert [j.id for j in first] == [ids[4], ids[3]]
    second = admin("list_jobs", JobFilter(limit=2, before_id=first[-1].id))
    assert [j.id for j in second] == [ids[2], ids[1]]
    third = admin("list_jobs", JobFilter(limit=2, before_id=second[-1].id))
    assert [j.id for j in third] == [ids[0]]


def test_job_filter_checks_its_input():
    with pytest.raises(ConfigurationError, match="unknown status 'dead'"):
        JobFilter(status="dead")
    with pytest.raises(ConfigurationError, match="limit must be from 1"):
        JobFilter(limit=0)
    assert JobFilter(status="retrying").params()["state"] == "retrying"
    assert JobFilter(status="retrying").params()["status"] == "queued"  # sargable
    assert JobFilter(status="failed").params()["status"] == "failed"
    assert JobFilter(status="failed").params()["state"] is None


# -- show ------------------------------------------------------------------


def test_get_job_returns_every_field(admin, conn):
    job_id = add_job(
        conn,
        task="resize",
        queue="images",
        args={"image_id": 7, "sizes": [1, 2]},
        priority=1,
        status="failed",
        attempts=2,
        max_attempts=2,
        fingerprint="img-7",
        finished_at=NOW,
        errors=[error("ValueError", 1), error("TimeoutError", 2)],
        result={"kept": True},
        meta={"trace_id": "abc"},
    )
    detail = admin("get_job", job_id)
    job = detail.job
    assert detail.state == "failed"
    assert (job.id, job.task, job.queue, job.priority) == (job_id, "resize", "images", 1)
    assert job.status is pgjobs.Status.FAILED
    assert job.args == {"image_id": 7, "sizes": [1, 2]}
    assert (job.attempts, job.max_attempts, job.fingerprint) == (2, 2, "img-7")
    assert job.result == {"kept": True}
    assert job.meta == {"trace_id": "abc"}
    assert [e["type"] for e in job.errors] == ["ValueError", "TimeoutError"]
    assert job.errors[1]["traceback"].endswith("TimeoutError: boom\n")
    assert job.finished_at == NOW


def test_get_job_of_an_unknown_id(admin):
    with pytest.raises(JobNotFoundError, match="no job with id 424242"):
        admin("get_job", 424242)


# -- retry and cancel one --------------------------------------------------


def test_retry_puts_a_failed_job_back_with_fresh_attempts_and_its_history(admin, conn):
    job_id = add_job(
        conn, status="failed", attempts=3, finished_at=NOW, run_at=NOW - HOUR, errors=[error()]
    )
    admin("retry_job", job_id)
    status, attempts, finished, due, errors = one(
        conn,
        "SELECT status, attempts, finished_at, run_at <= now(), errors FROM pgjobs.jobs"
        " WHERE id = %s",
        job_id,
    )
    assert (status, attempts, finished, due) == ("queued", 0, None, True)
    assert errors == [error()]
    assert one(conn, "SELECT run_at > %s FROM pgjobs.jobs WHERE id = %s", NOW, job_id) == (True,)


def test_retry_refuses_a_running_job_and_leaves_it_alone(admin, conn):
    job_id = add_job(conn, status="running", attempts=1)
    with pytest.raises(InvalidTransitionError, match=f"job {job_id} is running"):
        admin("retry_job", job_id)
    assert one(conn, "SELECT status, attempts FROM pgjobs.jobs WHERE id = %s", job_id) == (
        "running",
        1,
    )


def test_retry_of_an_unknown_id(admin):
    with pytest.raises(JobNotFoundError, match="no job with id 99"):
        admin("retry_job", 99)


def test_cancel_a_queued_job(admin, conn):
    job_id = add_job(conn, run_at=NOW + HOUR)
    admin("cancel_job", job_id)
    assert one(
        conn, "SELECT status, finished_at IS NOT NULL FROM pgjobs.jobs WHERE id = %s", job_id
    ) == ("cancelled", True)


def test_cancel_refuses_a_finished_job_and_an_unknown_id(admin, conn):
    job_id = add_job(conn, status="succeeded")
    with pytest.raises(InvalidTransitionError, match="only queued or running jobs can be"):
        admin("cancel_job", job_id)
    assert one(conn, "SELECT status FROM pgjobs.jobs WHERE id = %s", job_id) == ("succeeded",)
    with pytest.raises(JobNotFoundError):
        admin("cancel_job", job_id + 1000)


# -- bulk ------------------------------------------------------------------


def statuses(conn) -> dict[int, str]:
    return dict(conn.execute("SELECT id, CAST(status AS text) FROM pgjobs.jobs").fetchall())


def test_bulk_retry_changes_only_the_matching_jobs(admin, conn):
    a1 = add_job(conn, task="a", queue="q1", status="failed", attempts=3)
    a2 = add_job(conn, task="a", queue="q1", status="failed", attempts=3)
    a3 = add_job(conn, task="a", queue="q2", status="failed", attempts=3)
    b = add_job(conn, task="b", queue="q1", status="failed", attempts=3)
    cancelled = add_job(conn, task="a", queue="q1", status="cancelled")
    done = add_job(conn, task="a", queue="q1", status="succeeded")

    result = admin("retry_jobs", status="failed", task="a")

    assert result.per_queue == {"q1": 2, "q2": 1}
    assert result.total == 3
    after = statuses(conn)
    assert [after[i] for i in (a1, a2, a3)] == ["queued"] * 3
    assert (after[b], after[cancelled], after[done]) == ("failed", "cancelled", "succeeded")
    assert one(conn, "SELECT max(attempts) FROM pgjobs.jobs WHERE id = ANY(%s)", [a1, a2, a3]) == (
        0,
    )

    again = admin("retry_jobs", status="cancelled", queue="q1")
    assert again.per_queue == {"q1": 1}
    assert statuses(conn)[cancelled] == "queued"
    assert admin("retry_jobs", status="failed", queue="q2").total == 0


def test_retries_keep_fingerprints_unique_among_active_jobs(admin, conn):
    held = add_job(conn, status="failed", fingerprint="held")
    add_job(conn, fingerprint="held")  # the active job holding it
    older = add_job(conn, status="failed", fingerprint="twice")
    newer = add_job(conn, status="failed", fingerprint="twice")
    plain = add_job(conn, status="failed")

    with pytest.raises(InvalidTransitionError, match=f"job {held} .* holds its fingerprint"):
        admin("retry_job", held)
    result = admin("retry_jobs")

    assert result.total == 2
    after = statuses(conn)
    assert (after[held], after[older]) == ("failed", "failed")
    assert (after[newer], after[plain]) == ("queued", "queued")


def test_bulk_retry_wakes_the_idle_workers_of_each_queue(admin, conn, dsn):
    conn.execute(
        "INSERT INTO pgjobs.workers (host, pid, queues, concurrency, awaiting_work)"
        " VALUES ('h', 1, ARRAY['q1', 'q2', 'q3'], 1, true)"
    )
    for queue in ("q1", "q1", "q2"):
        add_job(conn, queue=queue, status="failed", attempts=3)
    add_job(conn, queue="q3", status="succeeded")
    with psycopg.connect(dsn, autocommit=True) as listener:
        listener.execute(f"LISTEN {WAKE_CHANNEL}")
        admin("retry_jobs")
        woken = [n.payload for n in listener.notifies(timeout=1.0)]
    assert sorted(woken) == ["q1", "q2"]


def test_bulk_retry_only_starts_from_failed_or_cancelled():
    with pytest.raises(ConfigurationError, match="failed or cancelled"):
        _admin.retry_many_params("running")


def test_bulk_cancel_takes_queued_jobs_and_asks_running_ones_to_stop(admin, conn):
    waiting = add_job(conn, queue="q1")
    later = add_job(conn, queue="q1", task="x", run_at=NOW + HOUR)
    running = add_job(conn, queue="q1", status="running")
    failed = add_job(conn, queue="q1", status="failed")
    other = add_job(conn, queue="q2", task="x")

    result = admin("cancel_jobs", queue="q1")

    assert result.per_queue == {"q1": 3}
    after = statuses(conn)
    assert (after[waiting], after[later]) == ("cancelled", "cancelled")
    # The running job runs until its worker stops it; only the request is recorded.
    assert (after[running], after[failed], after[other]) == ("running", "failed", "queued")
    asked = conn.execute(
        "SELECT cancel_requested_at IS NOT NULL FROM pgjobs.jobs WHERE id = %s", (running,)
    ).fetchone()
    assert asked == (True,)
    assert admin("cancel_jobs", task="x").per_queue == {"q2": 1}
    assert admin("cancel_jobs", queue="q1").per_queue == {}  # asked once is enough


def test_bulk_cancel_needs_a_filter(admin, conn):
    job_id = add_job(conn)
    with pytest.raises(ConfigurationError, match="needs a queue or a task"):
        admin("cancel_jobs")
    assert statuses(conn)[job_id] == "queued"


# -- stats -----------------------------------------------------------------


def test_stats_counts_each_queue_and_the_live_workers(admin, conn):
    # Relative to the clock now, not to the module's import: the session may be long.
    add_job(conn, queue="default", run_at=dt.datetime.now(dt.UTC) - dt.timedelta(minutes=10))
    add_job(conn, queue="default")
    add_job(conn, queue="default", run_at=NOW + HOUR)
    add_job(conn, queue="default", status="running")
    add_job(conn, queue="default", status="failed")
    add_job(conn, queue="emails", status="succeeded")
    add_job(conn, queue="emails", status="succeeded")
    add_job(conn, queue="emails", status="cancelled")
    conn.execute("INSERT INTO pgjobs.queues (name, paused) VALUES ('emails', true)")
    conn.execute(
        "INSERT INTO pgjobs.workers (host, pid, queues, concurrency, last_seen_at) VALUES"
        " ('h', 1, ARRAY['default'], 1, now()),"
        " ('h', 2, ARRAY['default'], 1, now() - interval '1 hour')"
    )

    stats = admin("stats")

    assert [q.queue for q in stats.queues] == ["default", "emails"]
    default, emails = stats.queues
    counts = (default.available, default.scheduled, default.running, default.failed)
    assert counts == (2, 1, 1, 1)
    assert (default.succeeded, default.cancelled, default.paused) == (0, 0, False)
    assert default.oldest_available_seconds is not None
    assert 600 <= default.oldest_available_seconds < 660
    assert (emails.succeeded, emails.cancelled, emails.available, emails.paused) == (
        2,
        1,
        0,
        True,
    )
    assert emails.oldest_available_seconds is None
    assert stats.live_workers == 1
    assert admin("stats", stale_after=7200).live_workers == 2


def test_stats_of_an_empty_queue(admin):
    stats = admin("stats")
    assert (stats.queues, stats.live_workers) == ([], 0)


# -- enqueue by name -------------------------------------------------------


def test_enqueue_without_an_app_accepts_any_task_name(admin, conn):
    spec = _admin.job_spec(
        "somewhere.else.task",
        {"n": 1},
        queue="reports",
        priority=4,
        delay=3600,
        max_attempts=7,
        fingerprint="r-1",
    )
    job_id = admin("enqueue", spec)
    row = one(
        conn,
        "SELECT task, args, queue, priority, max_attempts, fingerprint, state,"
        " run_at > now() + interval '59 minutes' FROM pgjobs.job_states WHERE id = %s",
        job_id,
    )
    assert row == ("somewhere.else.task", {"n": 1}, "reports", 4, 7, "r-1", "scheduled", True)
    with pytest.raises(pgjobs.errors.DuplicateJobError, match="r-1"):
        admin("enqueue", spec)
    skip = _admin.job_spec("somewhere.else.task", {}, fingerprint="r-1", on_conflict="skip")
    assert admin("enqueue", skip) is None
    assert one(conn, "SELECT count(*) FROM pgjobs.jobs") == (1,)


def test_enqueue_with_an_app_takes_the_task_defaults(admin, conn, dsn):
    app = pgjobs.App(dsn, strict=False)

    @app.task(name="welcome", queue="emails", max_attempts=5, priority=1)
    def welcome(user_id: int, greeting: str = "hi") -> None: ...

    job_id = admin("enqueue", _admin.job_spec("welcome", {"user_id": 3}, app=app))
    assert one(
        conn, "SELECT queue, max_attempts, priority, args FROM pgjobs.jobs WHERE id = %s", job_id
    ) == ("emails", 5, 1, {"user_id": 3})
    # Naming an App asks for the check, even when the App itself is not strict.
    with pytest.raises(UnknownTaskError, match="registered tasks: welcome"):
        _admin.job_spec("welcom", {"user_id": 3}, app=app)
    with pytest.raises(ArgumentsError, match="user_id"):
        _admin.job_spec("welcome", {"greeting": "yo"}, app=app)
    with pytest.raises(ConfigurationError, match="priority"):
        _admin.job_spec("welcome", {"user_id": 3}, app=app, priority=9)
    with pytest.raises(ConfigurationError, match="task name"):
        _admin.job_spec("", {})


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{bad", "not valid JSON"),
        ("", "not valid JSON"),
        ("[1, 2]", "must be a JSON object"),
        ("42", "must be a JSON object"),
    ],
)
def test_args_json_must_be_an_object(text, message):
    with pytest.raises(ArgumentsError, match=message):
        _admin.parse_args_json(text)


def test_args_json_parses_an_object():
    assert _admin.parse_args_json('{"a": [1, {"b": null}]}') == {"a": [1, {"b": None}]}


# -- the schema and a real worker ------------------------------------------


def test_an_unmigrated_database_says_to_migrate(server_dsn):
    name = f"pgjobs_empty_{secrets.token_hex(4)}"
    with psycopg.connect(server_dsn, autocommit=True) as admin_conn:
        admin_conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        empty = Admin(make_conninfo(server_dsn, dbname=name), "sync")
        with pytest.raises(SchemaVersionError, match="python -m pgjobs migrate"):
            empty("list_jobs")
        with pytest.raises(SchemaVersionError, match="python -m pgjobs migrate"):
            Admin(empty.dsn, "async")("retry_job", 1)
    finally:
        with psycopg.connect(server_dsn, autocommit=True) as admin_conn:
            admin_conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


def test_a_job_failed_by_a_worker_shows_its_traceback_and_can_be_retried(admin, dsn):
    app = pgjobs.App(dsn)

    @app.task(name="explode", max_attempts=1)
    def explode(n: int) -> None:
        raise RuntimeError(f"exploded {n}")

    try:
        job_id = explode.enqueue(5)
        assert job_id is not None
        drain(app)
        (summary,) = admin("list_jobs", JobFilter(status="failed"))
        assert (summary.id, summary.last_error_type) == (job_id, "RuntimeError")
        (entry,) = admin("get_job", job_id).job.errors
        assert entry["message"] == "exploded 5"
        assert 'raise RuntimeError(f"exploded {n}")' in entry["traceback"]
        assert entry["attempt"] == 1

        admin("retry_job", job_id)
        drain(app)
        detail = admin("get_job", job_id)
        assert (detail.state, detail.job.attempts, len(detail.job.errors)) == ("failed", 1, 2)
    finally:
        app.close()


def test_a_job_waiting_out_its_backoff_is_retrying(admin, dsn, conn):
    # retrying: queued after a failed attempt, whether or not the backoff has
    # passed; scheduled: a future run_at, never failed (migration 0008).
    app = pgjobs.App(dsn)

    @app.task(name="flaky", retry=pgjobs.Constant(seconds=3600))
    def flaky() -> None:
        raise RuntimeError("not yet")

    try:
        failing = flaky.enqueue()
        delayed = flaky.options(delay=3600).enqueue()
        drain(app)  # runs `failing` once; `delayed` is not due
    finally:
        app.close()
    row = one(
        conn,
        "SELECT state, attempts, run_at > now() + interval '30 minutes'"
        " FROM pgjobs.job_states WHERE id = %s",
        failing,
    )
    assert row == ("retrying", 1, True)
    assert one(conn, "SELECT state FROM pgjobs.job_states WHERE id = %s", delayed) == ("scheduled",)
    retrying = admin("list_jobs", JobFilter(status="retrying"))
    assert [(j.id, j.state, j.last_error_type) for j in retrying] == [
        (failing, "retrying", "RuntimeError")
    ]
    assert [j.id for j in admin("list_jobs", JobFilter(status="scheduled"))] == [delayed]
    assert [j.id for j in admin("list_jobs", JobFilter(status="queued"))] == [delayed, failing]

    # `python -m pgjobs jobs list --status retrying`, as an operator runs it.
    env = {**os.environ, "PGJOBS_DSN": dsn, "PYTHONPATH": str(REPO)}
    done = subprocess.run(
        [sys.executable, "-m", "pgjobs", "jobs", "list", "--status", "retrying", "--json"],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert [(j["id"], j["state"]) for j in json.loads(done.stdout)] == [(failing, "retrying")]
