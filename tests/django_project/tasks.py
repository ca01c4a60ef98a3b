"""The test project's Django tasks, and signal receivers that record where signals fire."""

from __future__ import annotations

import os
from typing import Any

from django.db import Error, connection

try:
    from django.tasks import task
    from django.tasks.signals import task_enqueued, task_finished, task_started
except ImportError:  # Django before 6: the django-tasks backport
    from django_tasks import task
    from django_tasks.signals import task_enqueued, task_finished, task_started


@task
def add(a: int, b: int) -> int:
    return a + b


@task(queue_name="emails", priority=80)
def send_email(to: str) -> dict[str, Any]:
    return {"sent": to}


@task
def fail(message: str) -> None:
    raise ValueError(message)


@task(takes_context=True)
def whoami(context: Any) -> dict[str, Any]:
    return {"id": context.task_result.id, "attempt": context.attempt}


@task
async def add_async(a: int, b: int) -> int:
    return a + b


@task
def record(key: str) -> int:
    """Write a row through Django's own connection in the worker: one row per run."""
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO test_runs (job_key, pid, note) VALUES (%s, %s, 'ran') RETURNING pid",
            [key, os.getpid()],
        )
        (pid,) = cursor.fetchone()
    return int(pid)


@task
def lose_connection() -> str:
    """End this thread's own database session, as a failover or an idle timeout would."""
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_terminate_backend(pg_backend_pid())")
    except Error:
        return "lost"
    return "kept"


def _note(signal: str, task_result: Any) -> None:
    if task_result.task.name == "lose_connection":
        return  # its connection is gone by the time it finishes
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO test_runs (job_key, pid, note) VALUES (%s, %s, %s)",
            [task_result.id, os.getpid(), f"{signal}:{task_result.status}"],
        )


def _on_started(sender: Any, task_result: Any, **kwargs: Any) -> None:
    _note("started", task_result)


def _on_finished(sender: Any, task_result: Any, **kwargs: Any) -> None:
    _note("finished", task_result)


def _on_enqueued(sender: Any, task_result: Any, **kwargs: Any) -> None:
    _note("enqueued", task_result)


task_started.connect(_on_started, dispatch_uid="tests.started")
task_finished.connect(_on_finished, dispatch_uid="tests.finished")
task_enqueued.connect(_on_enqueued, dispatch_uid="tests.enqueued")
