"""A tiny Django project for the tests of pgjobs.contrib.django.

Its settings read the database from PGJOBS_DSN, so the worker subprocess and
the test process use the test session's database; see `setup`.
"""

from __future__ import annotations

import os

SETTINGS = "tests.django_project.settings"


def setup(dsn: str) -> None:
    """Set Django up in this process, on `dsn` (once: Django cannot be set up twice)."""
    import django
    from django.conf import settings

    if settings.configured:
        return
    os.environ["DJANGO_SETTINGS_MODULE"] = SETTINGS
    os.environ["PGJOBS_DSN"] = dsn
    django.setup()
