"""Django tasks through a real `manage.py pgjobs_worker` process, observed through get_result."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest

from tests import django_project
from tests.conftest import REPO, wait_until


@pytest.fixture
def project(dsn):
    django_project.setup(dsn)
    from tests.django_project import tasks

    yield tasks
    from django.db import connections

    connections.close_all()


@pytest.fixture
def django_worker(dsn, tmp_path):
    """`manage.py pgjobs_worker` as a subprocess; its output goes to a log file."""
    log = tmp_path / "django-worker.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [
                sys.executable,
                "tests/django_project/manage.py",
                "pgjobs_worker",
                "--queues",
                "default,emails",
                "--concurrency",
                "4",
            ],
            cwd=REPO,
            env={**os.environ, "PGJOBS_DSN": dsn, "PYTHONPATH": str(REPO)},
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    proc.log = log
    yield proc
    if proc.poll() is None:
        proc.kill()
        proc.wait(10)


def finished(task, result_id):
    result = task.get_result(result_id)
    return result if result.is_finished else None


def test_committed_tasks_run_once_in_the_worker_and_rolled_back_ones_never_exist(
    project, conn, django_worker
):
    from django.test import Client

    client = Client(raise_request_exception=False)
    assert client.get("/order", {"fail": "1"}).status_code == 500  # rolled back
    committed = client.get("/order").json()["id"]
    failing = project.fail.enqueue("boom")
    context = project.whoami.enqueue()
    coroutine = project.add_async.enqueue(20, 22)
    recorded = project.record.enqueue("once")
    email = project.send_email.enqueue("a@example.com")

    every = [
        (project.add, committed),
        (project.fail, failing.id),
        (project.whoami, context.id),
        (project.add_async, coroutine.id),
        (project.record, recorded.id),
        (project.send_email, email.id),
    ]
    wait_until(lambda: all(finished(task, rid) for task, rid in every), timeout=30, interval=0.1)
    (worker_id,) = conn.execute(
        "SELECT id FROM pgjobs.workers WHERE pid = %s", [django_worker.pid]
    ).fetchone()

    result = project.add.get_result(committed)
    assert result.status == "SUCCESSFUL"
    assert result.return_value == 5
    assert result.worker_ids == [str(worker_id)]
    assert result.attempts == 1
    assert result.started_at is not None
    assert result.finished_at >= result.started_at

    failure = project.fail.get_result(failing.id)
    assert failure.status == "FAILED"
    (error,) = failure.errors
    assert error.exception_class is ValueError
    assert "ValueError: boom" in error.traceback
    assert failure.worker_ids == [str(worker_id)]
    with pytest.raises(ValueError, match="failed"):
        _ = failure.return_value

    assert project.whoami.get_result(context.id).return_value == {"id": context.id, "attempt": 1}
    assert project.add_async.get_result(coroutine.id).return_value == 42
    assert project.send_email.get_result(email.id).return_value == {"sent": "a@example.com"}
    # The task wrote through Django's connection in the worker, once.
    assert project.record.get_result(recorded.id).return_value == django_worker.pid
    ran = conn.execute("SELECT job_key, pid FROM test_runs WHERE note = 'ran'").fetchall()
    assert ran == [("once", django_worker.pid)]

    # Only the six committed jobs were ever written.
    assert conn.execute("SELECT count(*) FROM pgjobs.jobs").fetchone()[0] == 6
    # task_started and task_finished fired in the worker process, around each run.
    signals = conn.execute(
        "SELECT job_key, note FROM test_runs WHERE pid = %s AND note <> 'ran' ORDER BY id",
        [django_worker.pid],
    ).fetchall()
    for _, job_id in every:
        mine = [note for key, note in signals if key == str(job_id)]
        finished_as = "FAILED" if job_id == failing.id else "SUCCESSFUL"
        assert mine == ["started:RUNNING", f"finished:{finished_as}"]

    django_worker.send_signal(signal.SIGTERM)
    assert django_worker.wait(30) == 0
    assert conn.execute("SELECT count(*) FROM pgjobs.workers").fetchone()[0] == 0


def test_a_connection_lost_in_one_job_is_not_the_next_jobs(project, conn, django_worker):
    # Jobs one after another run in the same thread (the pool starts a thread
    # only when none is idle), with that thread's Django connection. The
    # first ends its own session; the next would fail on the dead connection
    # unless the worker closed it around the jobs, as Django does around a
    # request.
    lost = project.lose_connection.enqueue()
    wait_until(lambda: finished(project.lose_connection, lost.id), timeout=30, interval=0.1)
    assert project.lose_connection.get_result(lost.id).return_value == "lost"
    for key in ("after-1", "after-2"):
        after = project.record.enqueue(key)
        wait_until(lambda a=after: finished(project.record, a.id), timeout=30, interval=0.1)
        assert project.record.get_result(after.id).status == "SUCCESSFUL"


def test_a_task_with_two_attempts_fails_twice_then_is_failed(project, conn, django_worker):
    from django.conf import settings
    from django.test import override_settings

    retried = {"default": {**settings.TASKS["default"], "OPTIONS": {"MAX_ATTEMPTS": 2}}}
    with override_settings(TASKS=retried):
        result = project.fail.enqueue("again")
    assert conn.execute(
        "SELECT max_attempts FROM pgjobs.jobs WHERE id = %s", [int(result.id)]
    ).fetchone() == (2,)
    wait_until(lambda: finished(project.fail, result.id), timeout=30, interval=0.1)
    (worker_id,) = conn.execute(
        "SELECT id FROM pgjobs.workers WHERE pid = %s", [django_worker.pid]
    ).fetchone()
    failed = project.fail.get_result(result.id)
    assert failed.status == "FAILED"
    assert failed.attempts == 2
    assert failed.worker_ids == [str(worker_id), str(worker_id)]
    assert [e.exception_class for e in failed.errors] == [ValueError, ValueError]
    # The signals of both runs: the first failure leaves the job READY for its retry.
    notes = conn.execute(
        "SELECT note FROM test_runs WHERE job_key = %s AND pid = %s ORDER BY id",
        [result.id, django_worker.pid],
    ).fetchall()
    assert [n for (n,) in notes] == [
        "started:RUNNING",
        "finished:READY",
        "started:RUNNING",
        "finished:FAILED",
    ]


def test_a_task_whose_module_fails_to_import_fails_its_job_and_the_worker_goes_on(
    project, conn, django_worker
):
    # As another version of the code would have written it: the module path
    # of a task whose module raises on import.
    (broken,) = conn.execute(
        "SELECT pgjobs.enqueue('tests.django_project.broken_tasks.anything',"
        ' \'{"args": [], "kwargs": {}}\', meta => \'{"django": {"backend": "default"}}\','
        " max_attempts => 1)"
    ).fetchone()
    wait_until(
        lambda: (
            conn.execute("SELECT status::text FROM pgjobs.jobs WHERE id = %s", [broken]).fetchone()[
                0
            ]
            == "failed"
        ),
        timeout=30,
    )
    (errors,) = conn.execute("SELECT errors FROM pgjobs.jobs WHERE id = %s", [broken]).fetchone()
    assert errors[0]["type"] == "RuntimeError"
    assert "broken_tasks cannot be imported" in errors[0]["message"]
    after = project.add.enqueue(1, 1)
    wait_until(lambda: finished(project.add, after.id), timeout=30, interval=0.1)
    assert project.add.get_result(after.id).return_value == 2
