"""A `django.tasks` backend on pgjobs: `pgjobs.contrib.django.PgJobsBackend`.

Add "pgjobs.contrib.django" to INSTALLED_APPS for its management commands
(`pgjobs_migrate`, `pgjobs_worker`), and point TASKS at the backend; see the
README's Django section.
"""

from __future__ import annotations

from typing import Any

__all__ = ["PgJobsBackend"]


def __getattr__(name: str) -> Any:
    # Imported on first use: Django imports this package while it loads
    # INSTALLED_APPS, before the apps registry is ready.
    if name == "PgJobsBackend":
        from pgjobs.contrib.django._backend import PgJobsBackend

        return PgJobsBackend
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
