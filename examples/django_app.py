"""A Django project in one file, on pgjobs' django.tasks backend: a view enqueues, a worker runs.

The view saves a signup and enqueues its welcome task in one transaction: a
request that fails after the enqueue leaves neither. `manage.py
pgjobs_worker` (here: this file, which is also the project's manage.py)
runs the task, and `get_result` reads its return value back.

Run it (Django 6, or Django 4.2 to 5.2 with the django-tasks backport:
`pip install 'pgjobs[django]'`):

    PGJOBS_DSN=postgresql://postgres@localhost/postgres python examples/django_app.py

A real project keeps its tasks in an app's tasks.py; this one's live in the
script, so their module path, the job's task name, is `__main__.send_welcome`.
"""

from __future__ import annotations

import importlib.util
import os
import signal
import subprocess
import sys
import time
from typing import Any

import django
from django.conf import settings
from psycopg.conninfo import conninfo_to_dict

QUEUE = "example-django"
_db = conninfo_to_dict(
    os.environ.get("PGJOBS_DSN")
    or os.environ.get("DATABASE_URL")
    or "postgresql://postgres@127.0.0.1:5432/postgres"
)
settings.configure(
    DEBUG=False,
    SECRET_KEY="example-only",  # noqa: S106
    ALLOWED_HOSTS=["testserver"],
    ROOT_URLCONF=__name__,
    USE_TZ=True,
    INSTALLED_APPS=[
        # The django-tasks backport is an app; Django 6 has django.tasks built in.
        *(["django_tasks"] if importlib.util.find_spec("django.tasks") is None else []),
        "pgjobs.contrib.django",  # pgjobs_migrate, pgjobs_worker, and the checks
    ],
    DATABASES={
        "default": {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": _db.get("dbname", "postgres"),
            "USER": _db.get("user", ""),
            "PASSWORD": _db.get("password", ""),
            "HOST": _db.get("host", ""),
            "PORT": _db.get("port", ""),
        }
    },
    TASKS={"default": {"BACKEND": "pgjobs.contrib.django.PgJobsBackend", "QUEUES": [QUEUE]}},
)
django.setup()

from django.core.management import call_command, execute_from_command_line  # noqa: E402
from django.db import connection, transaction  # noqa: E402
from django.http import HttpRequest, JsonResponse  # noqa: E402
from django.test import Client  # noqa: E402
from django.urls import path  # noqa: E402

try:
    from django.tasks import task
except ImportError:  # Django 4.2 to 5.2: the backport
    from django_tasks import task


@task(queue_name=QUEUE)
def send_welcome(email: str) -> str:
    """Send the welcome email of a new signup (here: pretend to)."""
    return f"welcome sent to {email}"


def signup(request: HttpRequest) -> JsonResponse:
    """Save the signup and enqueue its welcome email, in one transaction."""
    email = request.GET["email"]
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("INSERT INTO example_django_signups (email) VALUES (%s)", [email])
        result = send_welcome.enqueue(email)
        if request.GET.get("decline"):
            raise RuntimeError("the signup was declined after its email was enqueued")
    return JsonResponse({"job": result.id})


urlpatterns = [path("signup", signup)]


def _jobs_for(email: str) -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pgjobs.jobs WHERE queue = %s AND args -> 'args' ->> 0 = %s",
            [QUEUE, email],
        )
        (count,) = cursor.fetchone()
    return int(count)


def main() -> None:
    call_command("pgjobs_migrate")
    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE TABLE IF NOT EXISTS example_django_signups (id bigserial PRIMARY KEY, "
            "email text NOT NULL)"
        )
    client = Client(raise_request_exception=False)
    declined = client.get("/signup", {"email": "nobody@example.com", "decline": "1"})
    print(f"declined signup: {declined.status_code}")
    print(f"after rollback: {_jobs_for('nobody@example.com')} jobs for nobody@example.com")
    job_id = client.get("/signup", {"email": "ada@example.com"}).json()["job"]
    print(f"after commit: job {job_id} is {send_welcome.get_result(job_id).status}")

    # The worker: `python manage.py pgjobs_worker`, where this file is manage.py.
    worker = subprocess.Popen([sys.executable, __file__, "pgjobs_worker", "--queues", QUEUE])
    try:
        result: Any = send_welcome.get_result(job_id)
        deadline = time.monotonic() + 60
        while not result.is_finished and time.monotonic() < deadline:
            time.sleep(0.1)
            result.refresh()
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(30)
    print(f"after the worker: {result.status} {result.return_value!r}")


if __name__ == "__main__":
    if len(sys.argv) > 1:
        execute_from_command_line(sys.argv)  # this file as manage.py: pgjobs_worker, check
    else:
        main()
