"""Running Django tasks in a pgjobs worker: the tasks by module path, and the run of one.

The worker's executor looks a job's task up by name in `App.tasks`; here
that mapping imports the Django task the name is the module path of, the
first time it is asked, and wraps it in a pgjobs Task whose handler:

- closes stale database connections before and after the run, as Django
  does around each request (`close_old_connections`), so a connection
  broken or left in a failed transaction by one job is not the next one's;
- sends `task_started` and `task_finished` around the call, with a
  TaskResult whose id is the job's id;
- passes a TaskContext to a task declared with `takes_context=True`;
- returns `{"return_value": ..., "worker_id": ...}`, which pgjobs stores as
  the job's result and get_result reads back.

The handler needs the job's id and attempt, which the executor does not pass
to handlers: the task's binder, which the executor calls in the job's own
asyncio task just before it starts the handler, finds the job among the
worker's running jobs by that asyncio task, and passes it on.
"""

from __future__ import annotations

import asyncio
import inspect
import traceback
from typing import TYPE_CHECKING, Any

from django.db import close_old_connections, reset_queries
from django.utils import timezone

from pgjobs._app import App
from pgjobs._options import EnqueueOptions
from pgjobs._retry import Exponential
from pgjobs._task import Binder, Task, TaskConfig
from pgjobs.contrib.django import _compat
from pgjobs.contrib.django._backend import UNKNOWN_WORKER, WORKER_NOTE, django_task
from pgjobs.errors import ArgumentsError
from pgjobs.worker._outcome import ClaimedJob

if TYPE_CHECKING:
    from pgjobs.worker import Worker


class _JobBinder(Binder):
    """A pgjobs Task's binder that hands the handler its claimed job and stored arguments."""

    __slots__ = ("registry",)

    def __init__(self, registry: DjangoTasks) -> None:
        super().__init__(inspect.signature(run_django_task))
        self.registry = registry

    def __call__(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
        raise TypeError("a Django task is enqueued through django.tasks, not through pgjobs")

    def call(self, stored: dict[str, Any]) -> tuple[tuple[Any, ...], dict[str, Any]]:
        """`(args, kwargs)` for `run_django_task`: the job itself, and what was stored."""
        job = self.registry.current_job()
        return (), {"job": job, "stored": stored, "worker_id": self.registry.worker_id()}


class DjangoTasks(dict[str, Task[Any, Any]]):
    """`App.tasks` for a worker of Django tasks: any Django task, by module path, on demand.

    `get(name)` imports the Django task whose module path is `name` and
    returns a pgjobs Task that runs it; None for a name that is none (the
    executor then fails the job as an unknown task).
    """

    def __init__(self, app: App) -> None:
        super().__init__()
        self.app = app
        #: The Worker that runs these tasks, set before it runs.
        self.worker: Worker | None = None

    def get(self, name: str, default: Any = None) -> Any:
        """The pgjobs Task that runs the Django task `name`, made on first use."""
        found = super().get(name)
        if found is not None:
            return found
        try:
            unknown = django_task(name) is None
        except Exception:  # the task's module fails to import
            # Nothing may escape the executor's lookup. The handler imports
            # the task again, and the job fails with this same error.
            unknown = False
        if unknown:
            return default
        made: Task[Any, Any] = Task(
            self.app,
            run_django_task,
            name,
            EnqueueOptions(),
            TaskConfig(timeout=None, retry=Exponential(), keep_result=True),
        )
        made.bind = _JobBinder(self)
        self[name] = made
        return made

    def current_job(self) -> ClaimedJob:
        """The job whose asyncio task is running now (see the module docstring).

        Raises:
            ArgumentsError: there is none (the executor fails the job with it).
        """
        current = asyncio.current_task()
        running = self.worker.running if self.worker is not None else {}
        for job_task, job in running.values():
            if job_task is current:
                return job
        raise ArgumentsError(
            "a Django task's job ran outside a pgjobs worker's job task; run Django tasks "
            "with `python manage.py pgjobs_worker`"
        )

    def worker_id(self) -> str:
        """The id of the worker's row in pgjobs.workers, as Django's worker ids are strings."""
        if self.worker is None or self.worker.worker_id is None:
            return UNKNOWN_WORKER
        return str(self.worker.worker_id)


def run_django_task(job: ClaimedJob, stored: dict[str, Any], worker_id: str) -> dict[str, Any]:
    """Run one Django task's job, in a worker thread, as Django runs a request."""
    reset_queries()
    close_old_connections()
    try:
        return _run(job, stored, worker_id)
    except BaseException as exc:
        # The note ends the traceback pgjobs stores: get_result reads the
        # attempt's worker from it.
        exc.add_note(WORKER_NOTE.format(worker_id=worker_id))
        raise
    finally:
        close_old_connections()


def _run(job: ClaimedJob, stored: dict[str, Any], worker_id: str) -> dict[str, Any]:
    meta = job.meta.get("django") or {}
    alias = meta.get("backend") or "default"
    backend = _compat.task_backends[alias]
    found = django_task(job.task)
    if found is None:  # the registry found it a moment ago; only a reload can get here
        raise LookupError(f"{job.task!r} is no longer a Django task")
    task = found.using(backend=alias, queue_name=job.queue)
    if isinstance(meta.get("priority"), int):
        task = task.using(priority=meta["priority"])
    now = timezone.now()
    result = _compat.TaskResult(
        task=task,
        id=str(job.id),
        status=_compat.TaskResultStatus.RUNNING,
        enqueued_at=None,
        started_at=now,
        last_attempted_at=now,
        finished_at=None,
        args=list(stored.get("args") or []),
        kwargs=dict(stored.get("kwargs") or {}),
        backend=alias,
        errors=[],
        # Earlier attempts' workers are read back by get_result, not here.
        worker_ids=[UNKNOWN_WORKER] * (job.attempts - 1) + [worker_id],
    )
    sender = type(backend)
    _compat.task_started.send(sender=sender, task_result=result)
    try:
        if task.takes_context:
            context = _compat.TaskContext(task_result=result)
            value = task.call(context, *result.args, **result.kwargs)
        else:
            value = task.call(*result.args, **result.kwargs)
        value = _compat.normalize_json(value)
    except BaseException as exc:
        object.__setattr__(result, "finished_at", timezone.now())
        kind = type(exc)
        result.errors.append(
            _compat.TaskError(
                exception_class_path=f"{kind.__module__}.{kind.__qualname__}",
                traceback="".join(traceback.format_exception(exc)),
            )
        )
        # A failed attempt with attempts left will run again: READY, as
        # get_result then says too.
        status = "READY" if job.attempts < job.max_attempts else "FAILED"
        object.__setattr__(result, "status", _compat.TaskResultStatus[status])
        _compat.task_finished.send(sender=sender, task_result=result)
        raise
    object.__setattr__(result, "finished_at", timezone.now())
    object.__setattr__(result, "status", _compat.TaskResultStatus.SUCCESSFUL)
    object.__setattr__(result, "_return_value", value)
    _compat.task_finished.send(sender=sender, task_result=result)
    return {"return_value": value, "worker_id": worker_id}
