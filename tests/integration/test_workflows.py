"""Workflows on a real PostgreSQL: depends_on, the blocked status, unblocking and cancelling."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import psycopg
import pytest
from psycopg_pool import AsyncConnectionPool

import pgjobs
from pgjobs import _admin
from pgjobs.errors import ConfigurationError
from pgjobs.testing import drain
from pgjobs.worker._outcome import Outcome, succeeded
from pgjobs.worker._rescuer import rescue_once
from tests.conftest import wait_until
from tests.integration.test_cancel_running import complete
from tests.integration.test_completer import claimed
from tests.integration.test_rescuer import add_running_jobs, add_worker

Conn = psycopg.Connection[tuple[Any, ...]]


@pytest.fixture
def app(dsn):
    application = pgjobs.App(dsn, strict=False)
    yield application
    application.close()


def status(conn: Conn, job_id: int) -> str:
    row = conn.execute("SELECT status::text FROM pgjobs.jobs WHERE id = %s", (job_id,)).fetchone()
    assert row is not None, f"no job {job_id}"
    return str(row[0])


def dependencies(conn: Conn) -> list[tuple[int, int]]:
    return conn.execute(
        "SELECT parent_id, job_id FROM pgjobs.job_dependencies ORDER BY 1, 2"
    ).fetchall()


def failed(job_id: int) -> Outcome:
    error = {"attempt": 1, "type": "ValueError", "message": "boom"}
    return Outcome(job_id, 1, "failed", 0.0, error, None)


def test_a_dependent_is_blocked_until_its_last_parent_succeeds(app, dsn, conn):
    worker_id, jobs = claimed(conn, 2)  # jobs 1 and 2, running
    child = app.enqueue("load", {"n": 42}, depends_on=[1, 2])
    assert status(conn, child) == "blocked"
    assert dependencies(conn) == [(1, child), (2, child)]
    # Blocked jobs are live, visible in the view and the states view, and never claimed.
    live = conn.execute("SELECT status::text FROM pgjobs.jobs_live WHERE id = %s", (child,))
    assert live.fetchone() == ("blocked",)
    state = conn.execute("SELECT state FROM pgjobs.job_states WHERE id = %s", (child,))
    assert state.fetchone() == ("blocked",)

    complete(dsn, worker_id, [succeeded(jobs[0], '"a"')])
    assert status(conn, child) == "blocked"
    assert dependencies(conn) == [(2, child)]
    complete(dsn, worker_id, [succeeded(jobs[1], '"b"')])
    assert status(conn, child) == "queued"
    assert dependencies(conn) == []


def test_both_parents_finishing_in_one_batch_queue_the_child_once(app, dsn, conn):
    worker_id, jobs = claimed(conn, 2)
    child = app.enqueue("load", depends_on=[1, 2])
    complete(dsn, worker_id, [succeeded(jobs[0], "1"), succeeded(jobs[1], "2")])
    assert status(conn, child) == "queued"


def test_a_worker_never_claims_a_blocked_job(app, conn):
    parent = app.enqueue("load", queue="elsewhere")  # a queue nobody serves here
    child = app.enqueue("load", depends_on=[parent])
    worker = drain(app, timeout=20, queues=("default",))
    assert worker.completed == 0
    assert status(conn, child) == "blocked"


def test_a_parent_that_succeeded_already_counts_at_enqueue(app, conn):
    @app.task(name="parent")
    def parent() -> int:
        return 7

    first = parent.enqueue()
    drain(app, timeout=20)
    assert status(conn, first) == "succeeded"
    child = app.enqueue("load", depends_on=[first])
    assert status(conn, child) == "queued"
    assert dependencies(conn) == []


def test_depends_on_a_missing_job_is_refused_and_nothing_is_written(app, conn):
    with pytest.raises(psycopg.errors.ForeignKeyViolation, match="depends_on names job 999"):
        app.enqueue("load", depends_on=[999])
    assert conn.execute("SELECT count(*) FROM pgjobs.jobs").fetchone() == (0,)
    assert dependencies(conn) == []


def test_depends_on_a_failed_job_is_refused(app, dsn, conn):
    worker_id, _jobs = claimed(conn, 1)
    complete(dsn, worker_id, [failed(1)])
    assert status(conn, 1) == "failed"
    with pytest.raises(psycopg.errors.ObjectNotInPrerequisiteState, match="job 1, which is failed"):
        app.enqueue("load", depends_on=[1])
    assert conn.execute("SELECT count(*) FROM pgjobs.jobs").fetchone() == (1,)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ([], "depends_on is empty"),
        (["1"], "positive integers"),
        ([0], "positive integers"),
        (5, "must be a list of job ids"),
    ],
)
def test_bad_depends_on_is_refused_before_the_database(app, conn, value, message):
    with pytest.raises(ConfigurationError, match=message):
        app.enqueue("load", depends_on=value)


def test_depends_on_with_a_fingerprint_is_refused(app):
    with pytest.raises(ConfigurationError, match="cannot have a fingerprint"):
        app.enqueue("load", depends_on=[1], fingerprint="x")


def test_a_failed_parent_cancels_its_dependents_recursively(app, dsn, conn):
    worker_id, _jobs = claimed(conn, 2)
    child = app.enqueue("load", depends_on=[1, 2])
    grandchild = app.enqueue("load", depends_on=[child])
    other = app.enqueue("load", depends_on=[2])
    complete(dsn, worker_id, [failed(1)])
    assert status(conn, child) == "cancelled"
    assert status(conn, grandchild) == "cancelled"
    assert status(conn, other) == "blocked"  # its parent is still running
    assert dependencies(conn) == [(2, other)]
    row = conn.execute(
        "SELECT cancelled_by, errors -> -1 ->> 'type' FROM pgjobs.jobs WHERE id = %s",
        (grandchild,),
    ).fetchone()
    assert row == ("pgjobs:depends_on", "pgjobs.DependencyFailed")


def test_cancelling_a_parent_or_a_blocked_job_cancels_what_depends_on_it(app, conn):
    first = app.enqueue("load")
    child = app.enqueue("load", depends_on=[first])
    grandchild = app.enqueue("load", depends_on=[child])
    app.cancel(child)
    assert status(conn, child) == "cancelled"
    assert status(conn, grandchild) == "cancelled"
    assert status(conn, first) == "queued"
    assert dependencies(conn) == []
    second = app.enqueue("load", depends_on=[first])
    app.cancel(first)
    assert status(conn, second) == "cancelled"


def test_the_bulk_cancel_takes_blocked_jobs_and_their_dependents(app, conn):
    first = app.enqueue("load", queue="a")
    child = app.enqueue("load", queue="b", depends_on=[first])
    grandchild = app.enqueue("load", queue="c", depends_on=[child])
    with conn.transaction():
        _admin.cancel_jobs(conn, queue="b")
    assert status(conn, child) == "cancelled"
    assert status(conn, grandchild) == "cancelled"
    assert status(conn, first) == "queued"


def test_a_rescued_job_that_fails_cancels_its_dependents(app, dsn, conn):
    dead = add_worker(conn, "1 hour")
    add_running_jobs(conn, dead, [2])  # job 1, on its last attempt
    job_id = 1
    child = app.enqueue("load", depends_on=[job_id])

    async def rescue() -> dict[str, int]:
        async with AsyncConnectionPool(dsn, min_size=1, open=False) as pool:
            return await rescue_once(pool, stale_after=30)

    counts = asyncio.run(rescue())
    assert counts["failed"] == 1
    assert status(conn, job_id) == "failed"
    assert status(conn, child) == "cancelled"


def test_a_chain_runs_in_order_through_a_worker(app, conn):
    ran: list[str] = []

    @app.task(name="step")
    def step(name: str) -> str:
        ran.append(name)
        return name.upper()

    a = step.enqueue("a")
    b = step.options(depends_on=[a]).enqueue("b")
    c = step.options(depends_on=[b]).enqueue("c")
    drain(app, timeout=20)
    assert ran == ["a", "b", "c"]
    assert [status(conn, i) for i in (a, b, c)] == ["succeeded"] * 3


def test_a_callback_reads_its_parents_results_sync_and_async(app, conn):
    seen: dict[str, Any] = {}

    @app.task(name="part")
    def part(n: int) -> dict[str, int]:
        return {"n": n}

    @app.task(name="sync_total")
    def sync_total() -> int:
        current = pgjobs.current_job()
        seen["sync"] = current.parent_results()
        seen["parents"] = current.parents
        return sum(r["n"] for r in seen["sync"].values())

    @app.task(name="async_total")
    async def async_total() -> int:
        seen["async"] = await pgjobs.current_job().parent_results_async()
        return len(seen["async"])

    @app.task(name="alone")
    def alone() -> None:
        seen["alone"] = pgjobs.current_job().parent_results()

    a, b = part.enqueue(2), part.enqueue(3)
    total = sync_total.options(depends_on=[b, a]).enqueue()
    counted = async_total.options(depends_on=[a]).enqueue()
    alone.enqueue()
    drain(app, timeout=20)
    assert seen["sync"] == {b: {"n": 3}, a: {"n": 2}}
    assert list(seen["sync"]) == [b, a]  # in depends_on's order
    assert seen["parents"] == (b, a)
    assert seen["async"] == {a: {"n": 2}}
    assert seen["alone"] == {}
    assert app.result(total) == 5
    assert app.result(counted) == 1


def test_in_memory_refuses_depends_on(app):
    from pgjobs.testing import in_memory

    with in_memory(app), pytest.raises(ConfigurationError, match="not supported in memory"):
        app.enqueue("load", depends_on=[1])


# -- chain and group ------------------------------------------------------------


def test_a_chain_is_written_in_the_callers_transaction_and_runs_in_order(app, dsn, conn):
    ran: list[str] = []

    @app.task(name="link")
    def link(name: str) -> str:
        parents = pgjobs.current_job().parent_results()
        ran.append(name)
        return "".join(parents.values()) + name

    with psycopg.connect(dsn) as caller:
        ids = pgjobs.chain(link.job("a"), link.job("b"), link.job("c")).enqueue(conn=caller)
        caller.rollback()
    assert conn.execute("SELECT count(*) FROM pgjobs.jobs").fetchone() == (0,)
    with psycopg.connect(dsn) as caller:
        ids = pgjobs.chain(link.job("a"), link.job("b"), link.job("c")).enqueue(conn=caller)
    assert [status(conn, i) for i in ids] == ["queued", "blocked", "blocked"]
    assert dependencies(conn) == [(ids[0], ids[1]), (ids[1], ids[2])]
    drain(app, timeout=20)
    assert ran == ["a", "b", "c"]
    assert app.result(ids[2]) == "abc"


def test_a_groups_callback_runs_after_every_member_with_their_results(app, conn):
    @app.task(name="square")
    def square(n: int) -> int:
        return n * n

    @app.task(name="total")
    def total() -> int:
        return sum(pgjobs.current_job().parent_results().values())

    ids = pgjobs.group([square.job(n) for n in range(1, 5)]).then(total.job()).enqueue()
    assert len(ids) == 5
    assert status(conn, ids[-1]) == "blocked"
    drain(app, timeout=20)
    assert app.result(ids[-1]) == 1 + 4 + 9 + 16


def test_a_failed_group_member_cancels_the_callback(app, conn):
    @app.task(name="flaky", max_attempts=1)
    def flaky(n: int) -> int:
        if n == 2:
            raise ValueError("two")
        return n

    @app.task(name="after")
    def after() -> None:
        raise AssertionError("must not run")

    ids = pgjobs.group([flaky.job(n) for n in range(3)]).then(after.job()).enqueue()
    drain(app, timeout=20)
    assert status(conn, ids[2]) == "failed"
    assert status(conn, ids[-1]) == "cancelled"


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: pgjobs.chain(), "a chain is empty"),
        (lambda: pgjobs.group([]), "a group is empty"),
        (lambda: pgjobs.chain("not a job"), "takes jobs made by task.job"),
    ],
)
def test_an_empty_or_malformed_workflow_is_refused(app, conn, make, message):
    with pytest.raises(ConfigurationError, match=message):
        make()


def test_a_workflow_with_a_fingerprint_is_refused(app):
    spec = app.job("load", fingerprint="once")
    with pytest.raises(ConfigurationError, match="cannot hold a job with a fingerprint"):
        pgjobs.chain(spec)


def test_blocked_jobs_are_listed_and_shown_as_blocked(app, conn):
    parent = app.enqueue("load")
    child = app.enqueue("load", depends_on=[parent])
    assert app.get_job(child).status == pgjobs.Status.BLOCKED
    listed = app.list_jobs(status="blocked")
    assert [j.id for j in listed] == [child]
    detail = _admin.get_job(conn, child)
    assert detail.state == "blocked"
    assert detail.job.meta["depends_on"] == [parent]


def test_a_retried_attempt_of_a_parent_leaves_its_dependent_blocked(app, dsn, conn):
    worker_id, _jobs = claimed(conn, 1)
    child = app.enqueue("load", depends_on=[1])
    error = {"attempt": 1, "type": "ValueError", "message": "again"}
    complete(dsn, worker_id, [Outcome(1, 1, "queued", 0.0, error, None)])
    assert status(conn, 1) == "queued"
    assert status(conn, child) == "blocked"


def test_unblocking_wakes_a_waiting_worker_of_the_queue(app, dsn, conn):
    worker_id, jobs = claimed(conn, 1)
    child = app.enqueue("load", depends_on=[1], queue="next")
    conn.execute(
        "UPDATE pgjobs.workers SET awaiting_work = true, queues = ARRAY['next'] WHERE id = %s",
        [worker_id],
    )
    with psycopg.connect(dsn, autocommit=True) as listener:
        listener.execute("LISTEN pgjobs")
        complete(dsn, worker_id, [succeeded(jobs[0], "1")])
        got = [(n.channel, n.payload) for n in listener.notifies(timeout=2.0, stop_after=1)]
    assert got == [("pgjobs", "next")]
    assert status(conn, child) == "queued"


def test_a_transactional_parent_unblocks_in_its_own_commit(app, conn):
    seen: dict[str, Any] = {}

    @app.task(name="tx_parent", transactional=True)
    async def tx_parent() -> str:
        return "committed"

    @app.task(name="gone_parent", keep_history=False)
    def gone_parent() -> str:
        return "not kept"

    @app.task(name="tx_child")
    def tx_child(name: str) -> None:
        seen[name] = pgjobs.current_job().parent_results()

    first, second = tx_parent.enqueue(), gone_parent.enqueue()
    # Only the transactional parent's commit (complete_one.sql) can queue this one.
    only = tx_child.options(depends_on=[first]).enqueue("only")
    both = tx_child.options(depends_on=[first, second]).enqueue("both")
    drain(app, timeout=20)
    assert status(conn, only) == "succeeded"
    assert status(conn, both) == "succeeded"
    assert seen["only"] == {first: "committed"}
    # The parent that kept no history is gone, so it has no result to read.
    assert seen["both"] == {first: "committed"}


def test_a_retried_dependent_runs_without_waiting_and_a_retried_parent_alone(app, dsn, conn):
    worker_id, _jobs = claimed(conn, 1)
    child = app.enqueue("load", depends_on=[1])
    complete(dsn, worker_id, [failed(1)])
    assert status(conn, child) == "cancelled"
    app.retry(1)
    assert status(conn, child) == "cancelled"  # retrying the parent does not bring it back
    app.retry(child)
    assert status(conn, child) == "queued"  # it waits for nothing any more
    assert dependencies(conn) == []


# -- races: each side waits for the other's lock, then sees its commit --------------


def _waiting_for_a_lock(conn: Conn, pid: int) -> bool:
    row = conn.execute(
        "SELECT wait_event_type = 'Lock' FROM pg_stat_activity WHERE pid = %s", [pid]
    ).fetchone()
    return bool(row and row[0])


def test_two_parents_finishing_at_once_in_two_transactions_queue_the_child(app, dsn, conn):
    _worker_id, _jobs = claimed(conn, 2)
    child = app.enqueue("load", depends_on=[1, 2])
    with psycopg.connect(dsn) as first, psycopg.connect(dsn) as second:
        first.execute("SELECT pgjobs.resolve_dependents('{1}', NULL)")  # holds the child's lock
        done = threading.Event()

        def other_parent() -> None:
            second.execute("SELECT pgjobs.resolve_dependents('{2}', NULL)")
            second.commit()
            done.set()

        thread = threading.Thread(target=other_parent)
        thread.start()
        wait_until(lambda: _waiting_for_a_lock(conn, second.info.backend_pid), timeout=10)
        # Neither has seen the other's deletion yet: the first still sees parent 2's row.
        assert status(conn, child) == "blocked"
        first.commit()
        thread.join(timeout=10)
        assert done.is_set()
    assert status(conn, child) == "queued"
    assert dependencies(conn) == []


def test_a_parent_finishing_while_a_dependent_is_enqueued_sees_it(app, dsn, conn):
    worker_id, jobs = claimed(conn, 1)
    with psycopg.connect(dsn) as producer:
        child = app.enqueue("load", depends_on=[1], conn=producer)  # holds parent 1's row
        thread = threading.Thread(target=complete, args=(dsn, worker_id, [succeeded(jobs[0], "1")]))
        thread.start()
        wait_until(
            lambda: (
                conn.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
                    " AND datname = current_database()"
                ).fetchone()[0]
                == 1
            ),
            timeout=10,
        )
        producer.commit()
        thread.join(timeout=10)
    assert status(conn, 1) == "succeeded"
    assert status(conn, child) == "queued"


def test_depends_on_from_sql_with_add_dependencies(app, dsn, conn):
    worker_id, jobs = claimed(conn, 1)
    with psycopg.connect(dsn) as caller:
        row = caller.execute(
            "SELECT pgjobs.add_dependencies(pgjobs.enqueue('load'), ARRAY[1, 1]::bigint[])"
        ).fetchone()
    assert row is not None
    child = int(row[0])
    assert status(conn, child) == "blocked"
    assert app.get_job(child).meta["depends_on"] == [1]
    complete(dsn, worker_id, [succeeded(jobs[0], '"x"')])
    assert status(conn, child) == "queued"


@pytest.mark.parametrize(
    ("sql", "message"),
    [
        ("SELECT pgjobs.add_dependencies(pgjobs.enqueue('load'), '{}')", "depends_on is empty"),
        ("SELECT pgjobs.add_dependencies(12345, ARRAY[1]::bigint[])", "job 12345 is not live"),
        (
            "SELECT pgjobs.add_dependencies(pgjobs.enqueue('load', fingerprint => 'f'),"
            " ARRAY[1]::bigint[])",
            "has a fingerprint",
        ),
        ("SELECT pgjobs.add_dependencies(1, ARRAY[1]::bigint[])", "cannot wait for itself"),
        ("SELECT pgjobs.add_dependencies(1, ARRAY[999]::bigint[])", "names job 999"),
    ],
)
def test_add_dependencies_refuses_bad_input(app, dsn, conn, sql, message):
    app.enqueue("load")  # job 1, queued
    with psycopg.connect(dsn) as caller, pytest.raises(psycopg.Error, match=message):
        caller.execute(sql)
    assert conn.execute("SELECT count(*) FROM pgjobs.jobs").fetchone() == (1,)
    assert dependencies(conn) == []


def test_add_dependencies_refuses_a_job_others_wait_for(app, dsn, conn):
    first = app.enqueue("load")
    second = app.enqueue("load", depends_on=[first])
    with psycopg.connect(dsn) as caller, pytest.raises(psycopg.Error, match="once other jobs"):
        caller.execute("SELECT pgjobs.add_dependencies(%s, ARRAY[%s]::bigint[])", [first, second])
