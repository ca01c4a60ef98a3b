"""The Django app of pgjobs.contrib.django: its management commands."""

from __future__ import annotations

from django.apps import AppConfig


class PgJobsConfig(AppConfig):  # type: ignore[misc]
    """`pgjobs_migrate` and `pgjobs_worker`; the app has no models."""

    name = "pgjobs.contrib.django"
    label = "pgjobs"
    verbose_name = "pgjobs"
