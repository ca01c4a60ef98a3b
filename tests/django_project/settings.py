"""Settings of the test project: PostgreSQL from PGJOBS_DSN, and the pgjobs task backend."""

from __future__ import annotations

import importlib.util
import json
import os

from psycopg.conninfo import conninfo_to_dict

_db = conninfo_to_dict(os.environ["PGJOBS_DSN"])

SECRET_KEY = "tests-only-not-secret"
DEBUG = False
USE_TZ = True
ALLOWED_HOSTS = ["testserver"]
ROOT_URLCONF = "tests.django_project.urls"

# Django 6 has django.tasks; before it, the django-tasks backport is an app.
_BACKPORT = importlib.util.find_spec("django.tasks") is None
INSTALLED_APPS = [*(["django_tasks"] if _BACKPORT else []), "pgjobs.contrib.django"]

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": _db.get("dbname", "postgres"),
        "USER": _db.get("user", ""),
        "PASSWORD": _db.get("password", ""),
        "HOST": _db.get("host", ""),
        "PORT": _db.get("port", ""),
    }
}

TASKS = {
    "default": {
        "BACKEND": "pgjobs.contrib.django.PgJobsBackend",
        # The check tests set other queues through the environment.
        "QUEUES": json.loads(os.environ.get("TEST_DJANGO_QUEUES", '["default", "emails"]')),
        "OPTIONS": {"MAX_ATTEMPTS": int(os.environ.get("TEST_DJANGO_MAX_ATTEMPTS", "1"))},
    }
}
