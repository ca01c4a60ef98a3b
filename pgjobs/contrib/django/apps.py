"""The Django app of pgjobs.contrib.django: its management commands, and the task checks."""

from __future__ import annotations

import importlib

from django.apps import AppConfig


class PgJobsConfig(AppConfig):  # type: ignore[misc]
    """`pgjobs_migrate` and `pgjobs_worker`; the app has no models."""

    name = "pgjobs.contrib.django"
    label = "pgjobs"
    verbose_name = "pgjobs"

    def ready(self) -> None:
        # Django runs the task backends' checks (ours says which queue names
        # and which missing tables are wrong) only once the tasks module's
        # checks are registered, which importing it does; nothing else
        # imports it before `manage.py check` runs in Django 6.
        from pgjobs.contrib.django._compat import TASKS_MODULE

        importlib.import_module(f"{TASKS_MODULE}.checks")
