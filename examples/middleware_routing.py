"""Job context, middleware and prefix routing: one handler for a family of task names.

Jobs named `reports.<anything>` are enqueued from SQL, as another language
or a trigger would; one handler registered for "reports.*" runs them and
reads the full name from `pgjobs.current_job()`. Two middlewares wrap every
run: one times it, one skips jobs whose meta asks for it.

    PGJOBS_DSN=postgresql://postgres@localhost/postgres python examples/middleware_routing.py
"""

from __future__ import annotations

import logging
import time
from typing import Any

import psycopg
import structlog

import pgjobs
from pgjobs.testing import drain

app = pgjobs.App()
QUEUE = "example-routing"


@app.middleware
async def timed(job: pgjobs.JobContext, call_next: pgjobs.CallNext) -> Any:
    """Outermost (declared first): times everything inside it, the next middleware included."""
    started = time.perf_counter()
    try:
        return await call_next()
    finally:
        print(
            f"  {job.task} (job {job.id}, attempt {job.attempt}) took "
            f"{time.perf_counter() - started:.4f}s"
        )


@app.middleware
async def skip_dry_runs(job: pgjobs.JobContext, call_next: pgjobs.CallNext) -> Any:
    """Short-circuits: what it returns without calling call_next() is the job's result."""
    if job.meta.get("dry_run"):
        return {"skipped": job.task}
    return await call_next()


@app.task(name="reports.*", queue=QUEUE)
def any_report(day: str) -> dict[str, str]:
    """Every `reports.<name>` job without a handler of its own (a sync handler, in a thread)."""
    kind = pgjobs.current_job().task.removeprefix("reports.")
    return {"report": kind, "day": day}


@app.task(name="reports.audit", queue=QUEUE)
async def audit(day: str) -> dict[str, str]:
    """An exact name wins over the pattern."""
    return {"audit": day}


def main() -> None:
    """Enqueue reports by name in SQL, run them, and print what each handler returned."""
    with psycopg.connect(app.dsn, autocommit=True) as conn:
        ids = [
            conn.execute(
                "SELECT pgjobs.enqueue(%s, %s::jsonb, queue => %s, meta => %s::jsonb)",
                (name, '{"day": "2026-01-05"}', QUEUE, meta),
            ).fetchone()[0]  # type: ignore[index]
            for name, meta in [
                ("reports.daily", "{}"),
                ("reports.weekly", "{}"),
                ("reports.audit", "{}"),
                ("reports.monthly", '{"dry_run": true}'),
            ]
        ]
        drain(app, queues=(QUEUE,))
        rows = conn.execute(
            "SELECT task, status, result FROM pgjobs.jobs WHERE id = ANY(%s) ORDER BY id",
            (ids,),
        ).fetchall()
    for task, status, result in rows:
        print(f"{task}: {status} {result}")
    app.close()


if __name__ == "__main__":
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    main()
