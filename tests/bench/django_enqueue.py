"""Enqueue through the Django backend in an atomic block, against `task.options(conn=...)`.

    python -m tests.bench.django_enqueue --dsn postgresql://postgres@127.0.0.1/DB

DB must be a database with pgjobs' tables (`python -m pgjobs migrate --dsn ...`);
the script deletes the jobs it wrote. Both sides write the same job (a task
of two int arguments, on the default queue) through the same psycopg
connection, Django's: one through `django_task.enqueue(i, i)` inside
`transaction.atomic()`, the other through a pgjobs task's
`.options(conn=connection.connection).enqueue(a=i, b=i)` inside the same
kind of block. Each turn writes `--jobs` jobs in `--batch` jobs per block,
the two sides alternate, and the medians of the per-job times are compared.
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Any

from tests import django_project


def _pgjobs_task() -> Any:
    import pgjobs

    app = pgjobs.App()

    @app.task(name="tests.bench.django_enqueue.add")
    def add(a: int, b: int) -> int:
        return a + b

    return add


def add(a: int, b: int) -> int:
    """The Django task's function (decorated once Django is set up)."""
    return a + b


def _turn(jobs: int, batch: int, enqueue: Any) -> float:
    from django.db import transaction

    started = time.perf_counter()
    for first in range(0, jobs, batch):
        with transaction.atomic():
            for i in range(first, min(first + batch, jobs)):
                enqueue(i)
    return (time.perf_counter() - started) / jobs * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dsn", required=True)
    parser.add_argument("--jobs", type=int, default=2000, help="jobs per turn (default 2000)")
    parser.add_argument("--batch", type=int, default=100, help="jobs per atomic block (100)")
    parser.add_argument("--turns", type=int, default=5, help="turns of each side (default 5)")
    args = parser.parse_args()

    django_project.setup(args.dsn)
    from django.db import connection

    try:
        from django.tasks import task
    except ImportError:
        from django_tasks import task

    django_add = task(add)
    pgjobs_add = _pgjobs_task()
    connection.ensure_connection()
    raw = connection.connection  # Django's own psycopg connection
    sides = {
        "django backend": lambda i: django_add.enqueue(i, i),
        "task.options(conn=)": lambda i: pgjobs_add.options(conn=raw).enqueue(a=i, b=i),
    }
    times: dict[str, list[float]] = {name: [] for name in sides}
    for enqueue in sides.values():  # a warm-up turn each, not counted
        _turn(min(args.jobs, 200), args.batch, enqueue)
    for _ in range(args.turns):
        for name, enqueue in sides.items():
            times[name].append(_turn(args.jobs, args.batch, enqueue))
    with connection.cursor() as cursor:
        cursor.execute(
            "DELETE FROM pgjobs.jobs WHERE task IN (%s, %s)",
            ["tests.bench.django_enqueue.add", django_add.module_path],
        )
    medians = {name: statistics.median(values) for name, values in times.items()}
    for name, values in times.items():
        shown = ", ".join(f"{v:.1f}" for v in values)
        print(f"{name:22} median {medians[name]:6.1f} us/job  (turns: {shown})")
    ratio = medians["django backend"] / medians["task.options(conn=)"]
    print(f"django backend / task.options(conn=): {ratio:.2f}x")


if __name__ == "__main__":
    main()
