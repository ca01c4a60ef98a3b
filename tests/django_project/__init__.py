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
    # The settings read both variables once, at setup; the rest of the test
    # session must not see them (some tests check what happens without a DSN).
    saved = {name: os.environ.get(name) for name in ("DJANGO_SETTINGS_MODULE", "PGJOBS_DSN")}
    os.environ.update(DJANGO_SETTINGS_MODULE=SETTINGS, PGJOBS_DSN=dsn)
    try:
        django.setup()
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
