"""`depends_on=[pgjobs.after(id, always=True)]`: a job that runs whatever its parent's outcome."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest

import pgjobs
from pgjobs.errors import ConfigurationError
from pgjobs.testing import drain
from pgjobs.worker._outcome import succeeded
from tests.integration.test_cancel_running import complete
from tests.integration.test_completer import claimed
from tests.integration.test_workflows import failed, status
from tests.readme import snippet

Conn = psycopg.Connection[tuple[Any, ...]]


@pytest.fixture
def app(dsn):
    application = pgjobs.App(dsn, strict=False)
    yield application
    application.close()


def edges(conn: Conn) -> list[tuple[int, int, bool]]:
    return conn.execute(
        "SELECT parent_id, job_id, always FROM pgjobs.job_dependencies ORDER BY 1, 2"
    ).fetchall()


def test_a_failed_parent_lets_its_always_dependents_run_and_cancels_the_others(app, dsn, conn):
    worker_id, jobs = claimed(conn, 2)  # jobs 1 and 2, running
    anyway = app.enqueue("report", depends_on=[pgjobs.after(1, always=True)])
    plain = app.enqueue("load", depends_on=[1])
    mixed = app.enqueue("load", depends_on=[pgjobs.after(1, always=True), 2])
    assert edges(conn) == [
        (1, anyway, True),
        (1, plain, False),
        (1, mixed, True),
        (2, mixed, False),
    ]
    meta = conn.execute("SELECT meta FROM pgjobs.jobs WHERE id = %s", (mixed,)).fetchone()
    assert meta == ({"depends_on": [1, 2], "depends_on_always": [1]},)

    complete(dsn, worker_id, [failed(jobs[0].id)])
    assert status(conn, anyway) == "queued"
    assert status(conn, plain) == "cancelled"
    # Its always parent has ended, but it still waits for its other one.
    assert status(conn, mixed) == "blocked"
    assert edges(conn) == [(2, mixed, False)]
    complete(dsn, worker_id, [succeeded(jobs[1], "2")])
    assert status(conn, mixed) == "queued"
    assert edges(conn) == []


def test_a_plain_parent_that_fails_cancels_the_job_whatever_its_always_parents_do(app, dsn, conn):
    worker_id, jobs = claimed(conn, 2)
    job = app.enqueue("load", depends_on=[pgjobs.after(1, always=True), 2])
    complete(dsn, worker_id, [failed(jobs[1].id)])
    assert status(conn, job) == "cancelled"
    assert edges(conn) == []
    # The always parent's outcome later changes nothing.
    complete(dsn, worker_id, [succeeded(jobs[0], "1")])
    assert status(conn, job) == "cancelled"


def test_a_cancel_anywhere_upstream_lets_an_always_dependent_run(app, conn):
    first = app.enqueue("load")
    second = app.enqueue("load", depends_on=[first])
    cleanup = app.enqueue("cleanup", depends_on=[pgjobs.after(second, always=True)])
    after_cleanup = app.enqueue("load", depends_on=[cleanup])
    # first is cancelled, so second is; cleanup waited for second's end, whatever it was.
    app.cancel(first)
    assert status(conn, second) == "cancelled"
    assert status(conn, cleanup) == "queued"
    assert status(conn, after_cleanup) == "blocked"


def test_an_always_parent_that_failed_already_counts_as_ended_at_enqueue(app, dsn, conn):
    worker_id, jobs = claimed(conn, 1)
    complete(dsn, worker_id, [failed(jobs[0].id)])
    job = app.enqueue("report", depends_on=[pgjobs.after(jobs[0].id, always=True)])
    assert status(conn, job) == "queued"
    assert edges(conn) == []
    # Without always it is refused, as before.
    with pytest.raises(psycopg.errors.ObjectNotInPrerequisiteState, match="always=True"):
        app.enqueue("load", depends_on=[jobs[0].id])
    with pytest.raises(psycopg.errors.ForeignKeyViolation, match="job 999, which does not exist"):
        app.enqueue("load", depends_on=[pgjobs.after(999, always=True)])


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: pgjobs.after(0, always=True), "positive integer"),
        (lambda: pgjobs.after(True), "positive integer"),
        (lambda: pgjobs.after(3, always="yes"), "always must be True or False"),
        (lambda: [3, pgjobs.after(3, always=True)], "names job 3 twice"),
        (lambda: ["3"], r"or pgjobs.after\(id, always=True\)"),
    ],
)
def test_bad_dependencies_are_refused_before_the_database(app, conn, make, message):
    with pytest.raises(ConfigurationError, match=message):
        app.enqueue("load", depends_on=make())
    assert conn.execute("SELECT count(*) FROM pgjobs.jobs").fetchone() == (0,)


def test_a_plain_id_and_after_without_always_are_the_same(app, conn):
    parent = app.enqueue("load")
    job = app.enqueue("load", depends_on=[pgjobs.after(parent), parent])
    assert edges(conn) == [(parent, job, False)]
    meta = conn.execute("SELECT meta FROM pgjobs.jobs WHERE id = %s", (job,)).fetchone()
    assert meta == ({"depends_on": [parent]},)


def test_a_clean_up_runs_through_a_worker_after_a_failed_step_and_the_rest_is_cancelled(app, conn):
    @app.task(name="step", max_attempts=1)
    def step(n: int) -> int:
        if n == 2:
            raise ValueError("step two broke")
        return n

    @app.task(name="cleanup")
    def cleanup() -> list[int]:
        job = pgjobs.current_job()
        # The failed parent left no result; the ids say whom it waited for.
        return [*job.parents, -1, *job.parent_results()]

    @app.task(name="publish")
    def publish() -> None:
        raise AssertionError("must not run: a step failed")

    steps = [step.enqueue(n) for n in (1, 2)]
    done = cleanup.options(depends_on=[pgjobs.after(s, always=True) for s in steps]).enqueue()
    published = publish.options(depends_on=steps).enqueue()
    drain(app, timeout=20)
    assert [status(conn, s) for s in steps] == ["succeeded", "failed"]
    assert status(conn, done) == "succeeded"
    assert app.result(done) == [*steps, -1, steps[0]]
    assert status(conn, published) == "cancelled"


def test_add_dependencies_from_sql_takes_the_always_parents_as_a_third_array(app, dsn, conn):
    worker_id, jobs = claimed(conn, 2)
    (job,) = conn.execute(
        "SELECT pgjobs.add_dependencies(pgjobs.enqueue('c'), ARRAY[2]::bigint[],"
        " ARRAY[1]::bigint[])"
    ).fetchone()
    assert edges(conn) == [(1, job, True), (2, job, False)]
    meta = conn.execute("SELECT meta FROM pgjobs.jobs WHERE id = %s", (job,)).fetchone()
    assert meta == ({"depends_on": [2, 1], "depends_on_always": [1]},)
    complete(dsn, worker_id, [failed(jobs[0].id)])
    assert status(conn, job) == "blocked"
    complete(dsn, worker_id, [succeeded(jobs[1], "2")])
    assert status(conn, job) == "queued"


def test_the_readme_sql_makes_a_job_wait_for_one_parent_to_end_and_another_to_succeed(conn):
    conn.execute("SELECT pgjobs.enqueue('p') FROM generate_series(1, 102)")
    (job,) = conn.execute(snippet("run-anyway-sql", "sql")).fetchone()
    assert edges(conn) == [(101, job, True), (102, job, False)]
    conn.execute("SELECT pgjobs.cancel(101)")
    assert status(conn, job) == "blocked"
    conn.execute("SELECT pgjobs.cancel(102)")
    assert status(conn, job) == "cancelled"
