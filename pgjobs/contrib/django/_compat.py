"""The `django.tasks` API, from Django itself (6.0 and later) or from the backport.

Django 6 ships `django.tasks`; for Django 4.2 to 5.2 the `django-tasks`
package provides the same API as `django_tasks`. The backend is written once
against the names collected here. They are typed `Any`: Django ships no type
information.
"""

from __future__ import annotations

import importlib
from typing import Any


def _tasks_module() -> tuple[Any, str]:
    try:
        return importlib.import_module("django.tasks"), "django.tasks"
    except ImportError:
        pass
    try:
        return importlib.import_module("django_tasks"), "django_tasks"
    except ImportError:
        raise ImportError(
            "pgjobs.contrib.django needs django.tasks (Django 6 or later) or the django-tasks "
            "backport (Django 4.2 to 5.2); install it with: pip install 'pgjobs[django]'"
        ) from None


tasks, TASKS_MODULE = _tasks_module()
_base = importlib.import_module(f"{TASKS_MODULE}.base")
_backends = importlib.import_module(f"{TASKS_MODULE}.backends.base")
_signals = importlib.import_module(f"{TASKS_MODULE}.signals")
_exceptions = importlib.import_module(f"{TASKS_MODULE}.exceptions")

BaseTaskBackend: Any = _backends.BaseTaskBackend
Task: Any = _base.Task
TaskContext: Any = _base.TaskContext
TaskError: Any = _base.TaskError
TaskResult: Any = _base.TaskResult
TaskResultStatus: Any = _base.TaskResultStatus
task_backends: Any = tasks.task_backends

task_enqueued: Any = _signals.task_enqueued
task_started: Any = _signals.task_started
task_finished: Any = _signals.task_finished

# The backport names its exceptions with an Error suffix.
InvalidTask: Any = getattr(_exceptions, "InvalidTask", None) or _exceptions.InvalidTaskError
TaskResultDoesNotExist: Any = _exceptions.TaskResultDoesNotExist

if TASKS_MODULE == "django.tasks":
    normalize_json: Any = importlib.import_module("django.utils.json").normalize_json
else:
    normalize_json = importlib.import_module("django_tasks.utils").normalize_json
