"""PgJobsBackend: a `django.tasks` backend whose jobs are pgjobs jobs.

`enqueue` writes the job through Django's own database connection, in
whatever transaction it has open: inside `transaction.atomic()` the job
exists only if the block commits, and nothing needs `on_commit`. A worker
(`manage.py pgjobs_worker`, pgjobs/contrib/django/_runner.py) runs it.

How a Django task is stored in `pgjobs.jobs`:

- `task`: the task's module path (`myapp.tasks.send_email`);
- `args`: `{"args": [...], "kwargs": {...}}`;
- `queue`: the task's `queue_name`; `run_at`: its `run_after`, else now;
- `priority`: its priority mapped onto 0 to 4 (_priority.py);
- `meta`: `{"django": {"backend": alias, "priority": the Django priority}}`;
- `result`, when it succeeds: `{"return_value": ..., "worker_id": "..."}`.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Iterable
from typing import Any

from django.conf import settings
from django.core import checks
from django.db import DatabaseError, connections
from django.utils import timezone
from django.utils.module_loading import import_string
from psycopg.conninfo import make_conninfo

from pgjobs import _enqueue, _migrate, _sql, _window
from pgjobs._enqueue import new_spec
from pgjobs._options import EnqueueOptions, check_queue
from pgjobs._serde import DEFAULT_MAX_PAYLOAD_BYTES, dump_args
from pgjobs.contrib.django import _compat
from pgjobs.contrib.django._compat import (
    BaseTaskBackend,
    InvalidTask,
    Task,
    TaskError,
    TaskResult,
    TaskResultDoesNotExist,
    TaskResultStatus,
)
from pgjobs.contrib.django._priority import to_pgjobs
from pgjobs.errors import ArgumentsError, ConfigurationError

#: Where this package's own queries are (its sql/ folder).
SQL = "pgjobs.contrib.django"
#: The management command that creates or upgrades pgjobs' tables.
MIGRATE_COMMAND = "python manage.py pgjobs_migrate"

#: The columns of get_result.sql that hold JSON text.
JSON_COLUMNS = ("args", "errors", "result", "meta")

#: pgjobs' job states as Django's. Django has no cancelled state: a
#: cancelled job is FAILED, as one that will never run.
STATUSES = {
    "queued": "READY",
    "running": "RUNNING",
    "succeeded": "SUCCESSFUL",
    "failed": "FAILED",
    "cancelled": "FAILED",
}

#: The line the worker adds to a failed attempt's traceback, naming itself:
#: pgjobs keeps no worker per attempt, and Django's TaskResult wants them.
WORKER_NOTE = "pgjobs worker {worker_id}"
_WORKER_NOTE = re.compile(r"^pgjobs worker (\S+)$", re.MULTILINE)
#: A worker id that was not recorded (an attempt that ended without an outcome).
UNKNOWN_WORKER = "unknown"


def dsn_for(alias: str) -> str:
    """A libpq connection string for Django's database `alias` (for the worker and migrations)."""
    settings_dict = connections[alias].settings_dict
    params: dict[str, Any] = {
        "dbname": settings_dict.get("NAME") or None,
        "user": settings_dict.get("USER") or None,
        "password": settings_dict.get("PASSWORD") or None,
        "host": settings_dict.get("HOST") or None,
        "port": settings_dict.get("PORT") or None,
    }
    options = settings_dict.get("OPTIONS") or {}
    for key in ("sslmode", "sslrootcert", "sslcert", "sslkey", "service", "passfile"):
        if options.get(key):
            params[key] = options[key]
    return make_conninfo(**{k: v for k, v in params.items() if v is not None})


class PgJobsBackend(BaseTaskBackend):  # type: ignore[misc]
    """A `django.tasks` backend on pgjobs.

    Settings: `TASKS = {"default": {"BACKEND": "pgjobs.contrib.django.PgJobsBackend",
    "QUEUES": ["default", ...], "OPTIONS": {...}}}`. OPTIONS:

    - `DATABASE`: the Django database alias jobs are written through and
      read from (default "default"); it must hold pgjobs' tables;
    - `MAX_ATTEMPTS`: runs before a failing task is FAILED (default 1, as
      Django's task API has no retries; more retry with pgjobs' backoff);
    - `MAX_PAYLOAD_BYTES`: the largest JSON arguments of one job (1 MiB).
    """

    supports_defer = True
    supports_async_task = True
    supports_get_result = True
    supports_priority = True

    def __init__(self, alias: str, params: dict[str, Any]) -> None:
        super().__init__(alias, params)
        self.database: str = self.options.get("DATABASE", "default")
        self.max_attempts: int = self.options.get("MAX_ATTEMPTS", 1)

    # -- enqueue -----------------------------------------------------------

    def validate_task(self, task: Any) -> None:
        """Django's checks, and pgjobs' own: a usable queue name and task name."""
        super().validate_task(task)
        try:
            check_queue(task.queue_name)
        except ConfigurationError as exc:
            raise InvalidTask(str(exc)) from None
        if len(task.module_path) > 255:
            raise InvalidTask(
                f"the task's module path {task.module_path!r} is longer than the 255 "
                "characters pgjobs stores as a task name; shorten the module or function name"
            )

    def enqueue(self, task: Any, args: Any, kwargs: Any) -> Any:
        """Write the job on Django's connection, in its current transaction."""
        self.validate_task(task)
        # TaskResult normalises args and kwargs to JSON values: what is not
        # JSON raises Django's own error here, before anything is written.
        result = TaskResult(
            task=task,
            id="",
            status=TaskResultStatus.READY,
            enqueued_at=None,
            started_at=None,
            last_attempted_at=None,
            finished_at=None,
            args=args,
            kwargs=kwargs,
            backend=self.alias,
            errors=[],
            worker_ids=[],
        )
        try:
            payload = dump_args(
                {"args": result.args, "kwargs": result.kwargs},
                max_bytes=self.options.get("MAX_PAYLOAD_BYTES", DEFAULT_MAX_PAYLOAD_BYTES),
            )
        except ArgumentsError as exc:
            raise InvalidTask(str(exc)) from None
        options = EnqueueOptions(
            queue=task.queue_name,
            priority=to_pgjobs(task.priority),
            run_at=self._run_at(task.run_after),
            max_attempts=self.max_attempts,
            meta={"django": {"backend": self.alias, "priority": task.priority}},
        )
        query, params = _enqueue.single_query(new_spec(task.module_path, payload, options))
        with connections[self.database].cursor() as cursor:
            cursor.execute(_sql.psycopg(query), params)
            (job_id,) = cursor.fetchone()
        object.__setattr__(result, "id", str(job_id))
        object.__setattr__(result, "enqueued_at", timezone.now())
        _compat.task_enqueued.send(type(self), task_result=result)
        return result

    @staticmethod
    def _run_at(run_after: dt.datetime | None) -> dt.datetime | None:
        if run_after is None or timezone.is_aware(run_after):
            return run_after
        # USE_TZ = False: a naive time is in the project's TIME_ZONE.
        aware: dt.datetime = timezone.make_aware(run_after, timezone.get_default_timezone())
        return aware

    # -- results -------------------------------------------------------------

    def get_result(self, result_id: str) -> Any:
        """The TaskResult of job `result_id`, read from `pgjobs.jobs`.

        Raises:
            TaskResultDoesNotExist: no such job, or it is not a Django task's.
        """
        try:
            job_id = int(result_id)
        except (TypeError, ValueError):
            raise TaskResultDoesNotExist(f"{result_id!r} is not a pgjobs job id") from None
        with connections[self.database].cursor() as cursor:
            cursor.execute(_sql.psycopg("get_result", SQL), {"id": job_id})
            row = cursor.fetchone()
            columns = [c[0] for c in cursor.description] if row is not None else []
        if row is None:
            raise TaskResultDoesNotExist(f"no pgjobs job with id {job_id}")
        values = dict(zip(columns, row, strict=True))
        for column in JSON_COLUMNS:
            if values[column] is not None:
                values[column] = json.loads(values[column])
        return result_from_row(values, self.alias)

    # -- checks --------------------------------------------------------------

    def check(self, **kwargs: Any) -> Iterable[Any]:
        """`manage.py check`: the queue names, the database, and pgjobs' tables in it."""
        messages: list[Any] = list(super().check(**kwargs))
        for queue in sorted(self.queues, key=repr):
            try:
                check_queue(queue)
            except ConfigurationError as exc:
                messages.append(
                    checks.Error(
                        f"TASKS[{self.alias!r}]['QUEUES'] holds {queue!r}, which pgjobs cannot "
                        f"use as a queue name: {exc}",
                        hint="Use non-empty strings of at most 128 characters.",
                        id="pgjobs.E001",
                    )
                )
        if self.database not in settings.DATABASES:
            messages.append(
                checks.Error(
                    f"TASKS[{self.alias!r}]['OPTIONS']['DATABASE'] is {self.database!r}, "
                    "which is not in DATABASES",
                    hint=f"Name one of: {', '.join(sorted(settings.DATABASES))}.",
                    id="pgjobs.E002",
                )
            )
            return messages
        if connections[self.database].vendor != "postgresql":
            messages.append(
                checks.Error(
                    f"the database {self.database!r} of TASKS[{self.alias!r}] is "
                    f"{connections[self.database].vendor}; pgjobs needs PostgreSQL",
                    id="pgjobs.E003",
                )
            )
            return messages
        messages.extend(self._check_schema())
        return messages

    def _check_schema(self) -> list[Any]:
        try:
            with connections[self.database].cursor() as cursor:
                cursor.execute(_sql.psycopg("schema_versioned"), {})
                (versioned,) = cursor.fetchone()
                found = None
                if versioned:
                    cursor.execute(_sql.psycopg("schema_windowed"), {})
                    (windowed,) = cursor.fetchone()
                    name = "schema_window" if windowed else "schema_revision"
                    cursor.execute(_sql.psycopg(name), {})
                    row = cursor.fetchone()
                    if row is not None and row[0] is not None:
                        oldest = row[1] if windowed and row[1] is not None else None
                        found = _window.Schema(str(row[0]), oldest)
        except DatabaseError as exc:
            return [
                checks.Warning(
                    f"could not read pgjobs' schema revision from the database "
                    f"{self.database!r}: {exc}".strip(),
                    hint=f"Once the database answers, `{MIGRATE_COMMAND}` creates the tables.",
                    id="pgjobs.W001",
                )
            ]
        needed = _migrate.SCHEMA_REVISION
        if _window.problem(_migrate.CODE, found) is None:
            return []
        if found is None:
            text = f"the database {self.database!r} has no pgjobs tables"
        elif found.revision < needed:
            text = (
                f"pgjobs' tables in the database {self.database!r} are at revision "
                f"{found.revision}, this pgjobs (revision {_migrate.CODE.describe()}) needs "
                f"{_migrate.OLDEST_SCHEMA} or newer"
            )
        else:
            return [
                checks.Error(
                    f"pgjobs' tables in the database {self.database!r} are at revision "
                    f"{found.revision}, which works with pgjobs code of revision {found.oldest} "
                    f"or newer; this pgjobs is revision {needed}",
                    hint="Upgrade the pgjobs package on this host.",
                    id="pgjobs.E004",
                )
            ]
        return [
            checks.Error(
                f"{text}, so TASKS[{self.alias!r}] cannot enqueue",
                hint=f"Run `{MIGRATE_COMMAND}`.",
                id="pgjobs.E004",
            )
        ]


def django_task(name: str) -> Any:
    """The Django Task at module path `name`; None when there is none."""
    try:
        found = import_string(name)
    except ImportError:
        return None
    return found if isinstance(found, Task) else None


def _error_path(kind: str) -> str:
    # pgjobs stores a builtin exception's bare name (ValueError); Django
    # wants a path that import_string resolves.
    return kind if "." in kind else f"builtins.{kind}"


def worker_ids(row: dict[str, Any]) -> list[str]:
    """One worker id per attempt, as far as they were recorded.

    The worker running the job now is in `worker_id`; the one that ran the
    successful attempt is in the result; a failed attempt's traceback ends
    with the worker's note (WORKER_NOTE). Anything else is UNKNOWN_WORKER.
    """
    known: dict[int, str] = {}
    for error in row["errors"] or []:
        match = _WORKER_NOTE.search(error.get("traceback") or "")
        if match and isinstance(error.get("attempt"), int):
            known[error["attempt"]] = match.group(1)
    attempts = int(row["attempts"])
    if row["status"] == "running" and row["worker_id"] is not None:
        known[attempts] = str(row["worker_id"])
    result = row["result"]
    if row["status"] == "succeeded" and isinstance(result, dict) and "worker_id" in result:
        known[attempts] = str(result["worker_id"])
    return [known.get(attempt, UNKNOWN_WORKER) for attempt in range(1, attempts + 1)]


def result_from_row(row: dict[str, Any], alias: str) -> Any:
    """A Django TaskResult from a row of get_result.sql.

    Raises:
        TaskResultDoesNotExist: the row's task is not a Django task here.
    """
    task = django_task(row["task"])
    meta = (row["meta"] or {}).get("django")
    if task is None or not isinstance(meta, dict):
        raise TaskResultDoesNotExist(
            f"pgjobs job {row['id']} runs {row['task']!r}, which is not a Django task here"
        )
    task = task.using(backend=meta.get("backend", alias), queue_name=row["queue"])
    if isinstance(meta.get("priority"), int):
        task = task.using(priority=meta["priority"])
    args = row["args"] or {}
    errors = [
        TaskError(
            exception_class_path=_error_path(str(error.get("type", "Exception"))),
            traceback=str(error.get("traceback") or error.get("message") or ""),
        )
        for error in row["errors"] or []
    ]
    result = TaskResult(
        task=task,
        id=str(row["id"]),
        status=TaskResultStatus[STATUSES[row["status"]]],
        enqueued_at=row["created_at"],
        started_at=row["started_at"],
        last_attempted_at=row["started_at"],
        finished_at=row["finished_at"],
        args=list(args.get("args") or []),
        kwargs=dict(args.get("kwargs") or {}),
        backend=task.backend,
        errors=errors,
        worker_ids=worker_ids(row),
    )
    stored = row["result"]
    if row["status"] == "succeeded" and isinstance(stored, dict):
        object.__setattr__(result, "_return_value", stored.get("return_value"))
    return result
