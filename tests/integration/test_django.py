"""The django.tasks backend in the test process: enqueue in Django's transaction, results, checks.

The Django project is tests/django_project, set up once in this process on
the session's database. Running jobs through a real worker process is
tests/acceptance/test_django_worker.py.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import subprocess
import sys

import psycopg
import pytest
from psycopg.conninfo import make_conninfo

from pgjobs import _migrate
from tests import django_project
from tests.conftest import REPO


@pytest.fixture
def project(dsn):
    """The test project, set up on the session's database, with its tasks module."""
    django_project.setup(dsn)
    from tests.django_project import tasks

    yield tasks
    from django.db import connections

    connections.close_all()


def jobs(conn):
    return conn.execute(
        "SELECT task, args, queue, priority, status::text, meta, max_attempts FROM pgjobs.jobs"
    ).fetchall()


def test_the_backend_says_what_it_supports(project):
    from pgjobs.contrib.django import PgJobsBackend
    from pgjobs.contrib.django._compat import task_backends

    backend = task_backends["default"]
    assert isinstance(backend, PgJobsBackend)
    assert backend.supports_defer
    assert backend.supports_async_task
    assert backend.supports_get_result
    assert backend.supports_priority


def test_a_view_that_fails_after_enqueueing_leaves_no_job(project, conn):
    from django.test import Client

    response = Client(raise_request_exception=False).get("/order", {"fail": "1"})
    assert response.status_code == 500
    assert jobs(conn) == []
    # The task_enqueued receiver wrote through the same transaction: gone too.
    assert conn.execute("SELECT count(*) FROM test_runs").fetchone()[0] == 0


def test_a_view_that_commits_writes_its_job(project, conn):
    from django.test import Client

    response = Client().get("/order")
    assert response.status_code == 200
    job_id = int(response.json()["id"])
    assert jobs(conn) == [
        (
            "tests.django_project.tasks.add",
            {"args": [2, 3], "kwargs": {}},
            "default",
            2,
            "queued",
            {"django": {"backend": "default", "priority": 0}},
            1,
        )
    ]
    result = project.add.get_result(str(job_id))
    assert result.status == "READY"
    assert (result.args, result.kwargs) == ([2, 3], {})
    assert result.worker_ids == []
    assert result.errors == []
    assert result.enqueued_at is not None
    # The signal fired in this process, inside the committed transaction.
    notes = conn.execute("SELECT job_key, note FROM test_runs").fetchall()
    assert notes == [(str(job_id), "enqueued:READY")]


def test_enqueue_outside_a_transaction_commits_at_once(project, conn):
    result = project.add.enqueue(1, b=2)
    assert result.status == "READY"
    (row,) = jobs(conn)
    assert row[1] == {"args": [1], "kwargs": {"b": 2}}


def test_queue_priority_and_run_after_reach_the_row(project, conn):
    from django.utils import timezone

    later = timezone.now() + dt.timedelta(hours=1)
    result = project.send_email.using(run_after=later, priority=-70).enqueue("a@example.com")
    row = conn.execute(
        "SELECT queue, priority, run_at, meta FROM pgjobs.jobs WHERE id = %s", [int(result.id)]
    ).fetchone()
    assert row == ("emails", 4, later, {"django": {"backend": "default", "priority": -70}})
    # The task's own priority (80) when the call does not change it.
    high = project.send_email.enqueue("b@example.com")
    assert conn.execute(
        "SELECT priority FROM pgjobs.jobs WHERE id = %s", [int(high.id)]
    ).fetchone() == (0,)
    fetched = project.send_email.get_result(result.id)
    assert (fetched.task.priority, fetched.task.queue_name) == (-70, "emails")


def test_arguments_that_are_not_json_are_refused_by_django_and_nothing_is_written(project, conn):
    with pytest.raises(TypeError, match="Unsupported type"):
        project.add.enqueue({1, 2}, 3)
    assert jobs(conn) == []
    assert conn.execute("SELECT count(*) FROM test_runs").fetchone()[0] == 0


def test_a_nul_character_is_refused_before_anything_is_written(project, conn):
    from pgjobs.contrib.django._compat import InvalidTask

    with pytest.raises(InvalidTask, match="NUL"):
        project.add.enqueue("a\x00b", 1)
    assert jobs(conn) == []


def test_a_queue_outside_queues_is_refused_by_django(project):
    from pgjobs.contrib.django._compat import InvalidTask

    with pytest.raises(InvalidTask, match="not valid for backend"):
        project.add.using(queue_name="elsewhere")


def test_get_result_of_what_is_not_a_django_job(project, conn):
    from pgjobs.contrib.django._compat import TaskResultDoesNotExist

    with pytest.raises(TaskResultDoesNotExist, match="not a pgjobs job id"):
        project.add.get_result("nope")
    with pytest.raises(TaskResultDoesNotExist, match="no pgjobs job with id 424242"):
        project.add.get_result("424242")
    (plain,) = conn.execute("SELECT pgjobs.enqueue('some.pgjobs.task')").fetchone()
    with pytest.raises(TaskResultDoesNotExist, match="not a Django task"):
        project.add.get_result(str(plain))


def test_states_map_onto_django_statuses(project, conn):
    result = project.fail.enqueue("x")
    job_id = int(result.id)
    error = {
        "attempt": 1,
        "type": "ValueError",
        "message": "x",
        "traceback": "Traceback (most recent call last):\nValueError: x\npgjobs worker 3\n",
    }
    conn.execute(
        "UPDATE pgjobs.jobs SET status = 'failed', attempts = 1, finished_at = now(),"
        " errors = %s WHERE id = %s",
        [json.dumps([error]), job_id],
    )
    result.refresh()
    assert result.status == "FAILED"
    assert result.worker_ids == ["3"]
    (failure,) = result.errors
    assert failure.exception_class is ValueError
    assert failure.traceback.startswith("Traceback")
    with pytest.raises(ValueError, match="failed"):
        _ = result.return_value
    conn.execute("UPDATE pgjobs.jobs SET status = 'cancelled' WHERE id = %s", [job_id])
    assert project.fail.get_result(result.id).status == "FAILED"  # Django has no cancelled


def test_aenqueue_and_aget_result(project, conn):
    async def both():
        result = await project.add_async.aenqueue(4, 5)
        return await project.add_async.aget_result(result.id)

    fetched = asyncio.run(both())
    assert fetched.status == "READY"
    assert fetched.args == [4, 5]
    assert len(jobs(conn)) == 1


# -- manage.py check and pgjobs_migrate, as subprocesses -----------------------


def manage(dsn, *args, **env):
    return subprocess.run(
        [sys.executable, "tests/django_project/manage.py", *args],
        cwd=REPO,
        env={
            **os.environ,
            "PGJOBS_DSN": dsn,
            "PYTHONPATH": str(REPO),
            **env,
        },
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_check_passes_on_a_migrated_database(dsn):
    done = manage(dsn, "check")
    assert done.returncode == 0, done.stderr
    assert "no issues" in done.stdout


def test_check_refuses_a_queue_name_pgjobs_cannot_use(dsn):
    done = manage(dsn, "check", TEST_DJANGO_QUEUES=json.dumps(["default", "emails", ""]))
    assert done.returncode == 1
    assert "pgjobs.E001" in done.stderr
    assert "holds ''" in done.stderr


@pytest.fixture
def empty_database(server_dsn):
    """A database with no pgjobs tables, dropped afterwards."""
    name = f"pgjobs_test_django_{os.getpid()}"
    with psycopg.connect(server_dsn, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.execute(f'CREATE DATABASE "{name}"')
    yield make_conninfo(server_dsn, dbname=name)
    with psycopg.connect(server_dsn, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_check_without_migrations_names_the_command_and_the_command_fixes_it(empty_database):
    done = manage(empty_database, "check")
    assert done.returncode == 1
    assert "pgjobs.E004" in done.stderr
    assert "has no pgjobs tables" in done.stderr
    assert "Run `python manage.py pgjobs_migrate`" in done.stderr

    migrated = manage(empty_database, "pgjobs_migrate")
    assert migrated.returncode == 0, migrated.stderr
    assert "migrated from nothing to" in migrated.stdout
    again = manage(empty_database, "pgjobs_migrate")
    assert "already at revision" in again.stdout
    assert manage(empty_database, "check").returncode == 0


def test_check_accepts_a_newer_revision_inside_the_window_and_refuses_one_outside(
    empty_database,
):
    assert manage(empty_database, "pgjobs_migrate").returncode == 0
    following = f"{int(_migrate.SCHEMA_REVISION) + 1:04d}"
    with psycopg.connect(empty_database, autocommit=True) as conn:
        # As a newer pgjobs' expand would leave it: it still works with this code.
        conn.execute("UPDATE pgjobs.alembic_version SET version_num = %s", [following])
        conn.execute(
            "INSERT INTO pgjobs.schema_window (revision, oldest_code) VALUES (%s, %s)",
            [following, _migrate.SCHEMA_REVISION],
        )
    assert manage(empty_database, "check").returncode == 0
    with psycopg.connect(empty_database, autocommit=True) as conn:
        # A contract: it does not.
        conn.execute("UPDATE pgjobs.schema_window SET oldest_code = revision")
    done = manage(empty_database, "check")
    assert done.returncode == 1
    assert "pgjobs.E004" in done.stderr
    assert f"works with pgjobs code of revision {following} or newer" in done.stderr
    assert "Upgrade the pgjobs package" in done.stderr


def test_check_warns_when_the_database_cannot_be_reached():
    done = manage("host=127.0.0.1 port=1 dbname=nowhere user=postgres", "check")
    assert done.returncode == 0  # a warning: the database may simply not be up yet
    assert "pgjobs.W001" in done.stderr
    assert "pgjobs_migrate" in done.stderr
