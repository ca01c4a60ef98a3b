"""pgjobs.testing.in_memory: the same scenarios, in memory and on a real database, end alike."""

from __future__ import annotations

import asyncio
import types
from typing import Any

import psycopg
import pytest

import pgjobs
from pgjobs.errors import ConfigurationError, JobFailedError, JobNotFoundError
from pgjobs.testing import drain, in_memory

#: The order in which handlers ran, per App (reset by each scenario).
RAN: dict[int, list[str]] = {}


def make_app(dsn: str | None) -> tuple[pgjobs.App, types.SimpleNamespace]:
    """An App with the scenarios' tasks; `dsn=None` for one that only ever runs in memory."""
    app = pgjobs.App(dsn)
    ran = RAN.setdefault(id(app), [])
    no_wait = pgjobs.Constant(0, jitter=0)

    @app.task(name="add")
    def add(a: int, b: int) -> int:
        ran.append(f"add {a} {b}")
        return a + b

    @app.task(name="flaky", retry=no_wait)
    def flaky(label: str) -> str:
        job = pgjobs.current_job()
        ran.append(f"flaky {label} {job.attempt}")
        if job.checkpoint_state is None:
            job.checkpoint({"saved": 1})
            raise RuntimeError("first attempt fails")
        return f"{label} resumed from {job.checkpoint_state['saved']}"

    @app.task(name="broken", max_attempts=2, retry=no_wait)
    def broken() -> None:
        raise ValueError("always")

    @app.task(name="slow", timeout=0.2, max_attempts=1)
    async def slow() -> None:
        await asyncio.sleep(5)

    @app.task(name="sleepy")
    def sleepy() -> str:
        job = pgjobs.current_job()
        if job.checkpoint_state is None:
            job.checkpoint("snoozed once")
            raise pgjobs.Snooze(0)
        return "awake"

    @app.task(name="parent")
    async def parent(n: int) -> int:
        job_id = await child.enqueue_async(n + 1)
        assert job_id is not None
        return job_id

    @app.task(name="child")
    def child(n: int) -> dict[str, Any]:
        job = pgjobs.current_job()
        ran.append(f"child {n}")
        return {"n": n, "task": job.task, "queue": job.queue, "attempt": job.attempt}

    @app.task(name="ranked")
    def ranked(label: str) -> None:
        ran.append(label)

    @app.task(name="forgetful", keep_history=False)
    def forgetful() -> None:
        ran.append("forgetful")

    tasks = types.SimpleNamespace(
        add=add, flaky=flaky, broken=broken, slow=slow, sleepy=sleepy, parent=parent,
        child=child, ranked=ranked, forgetful=forgetful,
    )  # fmt: skip
    return app, tasks


def ended(app: pgjobs.App, job_id: int) -> tuple[Any, ...]:
    """What a scenario compares of a job: everything but ids and times."""
    job = app.get_job(job_id)
    errors = [e["type"] for e in job.errors]
    return (
        job.task,
        job.status.value,
        job.attempts,
        job.snoozes,
        job.result,
        errors,
        job.checkpoint,
    )


def scenario(app: pgjobs.App, t: types.SimpleNamespace) -> dict[str, Any]:
    """Enqueue a bit of everything, drain, and say how each job ended."""
    ids = {
        "add": t.add.enqueue(2, 3),
        "flaky": t.flaky.enqueue("x"),
        "broken": t.broken.enqueue(),
        "slow": t.slow.enqueue(),
        "sleepy": t.sleepy.enqueue(),
        "parent": t.parent.enqueue(1),
        "forgetful": t.forgetful.enqueue(),
    }
    again = t.add.options(fingerprint="once").enqueue(1, 1)
    same = t.add.options(fingerprint="once", on_conflict="return").enqueue(9, 9)
    for label, priority in (("low", 4), ("normal", 2), ("critical", 0)):
        t.ranked.options(priority=priority, queue="ranked").enqueue(label)
    drain(app, concurrency=1, queues=("default", "ranked"))
    out: dict[str, Any] = {name: ended(app, i) for name, i in ids.items() if name != "forgetful"}
    out["child"] = ended(app, app.get_job(ids["parent"]).result)
    out["fingerprint"] = (again == same, ended(app, again))
    with pytest.raises(JobNotFoundError):
        app.get_job(ids["forgetful"])
    out["result"] = app.result(ids["add"])
    with pytest.raises(JobFailedError, match="always"):
        app.result(ids["broken"])
    ran = RAN[id(app)]
    out["ranked"] = [label for label in ran if label in ("low", "normal", "critical")]
    out["ran"] = sorted(label for label in ran if label not in ("low", "normal", "critical"))
    return out


EXPECTED = {
    "add": ("add", "succeeded", 1, 0, 5, [], None),
    "flaky": ("flaky", "succeeded", 2, 0, "x resumed from 1", ["RuntimeError"], None),
    "broken": ("broken", "failed", 2, 0, None, ["ValueError", "ValueError"], None),
    "slow": ("slow", "failed", 1, 0, None, ["pgjobs.errors.TaskTimeoutError"], None),
    "sleepy": ("sleepy", "succeeded", 1, 1, "awake", [], None),
    "parent": ("parent", "succeeded", 1, 0, None, [], None),  # its result is the child's id
    "child": (
        "child", "succeeded", 1, 0,
        {"n": 2, "task": "child", "queue": "default", "attempt": 1}, [], None,
    ),
    "fingerprint": (True, ("add", "succeeded", 1, 0, 2, [], None)),
    "result": 5,
    "ranked": ["critical", "normal", "low"],
    "ran": [
        "add 1 1", "add 2 3", "child 2", "flaky x 1", "flaky x 2", "forgetful",
    ],
}  # fmt: skip


def test_in_memory_and_the_database_end_every_scenario_alike(dsn: str) -> None:
    memory_app, memory_tasks = make_app(None)  # no DSN at all: it never connects
    with in_memory(memory_app) as store:
        in_memory_outcome = scenario(memory_app, memory_tasks)
    database_app, database_tasks = make_app(dsn)
    try:
        database_outcome = scenario(database_app, database_tasks)
    finally:
        database_app.close()
    for outcome in (in_memory_outcome, database_outcome):
        outcome["parent"] = (*outcome["parent"][:4], None, *outcome["parent"][5:])
    assert in_memory_outcome == database_outcome == EXPECTED
    # The store is the App's only while the block lasts.
    assert len(store.jobs) == 11  # 12 enqueued, the forgetful one deleted as it finished
    assert memory_app._memory is None


def test_conn_is_not_used_and_a_rollback_keeps_the_job(dsn: str) -> None:
    app, t = make_app(None)
    with in_memory(app) as store, psycopg.connect(dsn) as conn:
        job_id = t.add.options(conn=conn).enqueue(1, 2)
        conn.rollback()  # not transactional: the job stays
        assert store.jobs[job_id].status == pgjobs.Status.QUEUED
        (count,) = conn.execute("SELECT count(*) FROM pgjobs.jobs").fetchone() or (None,)
        assert count == 0
        drain(app)
        assert app.result(job_id) == 3


def test_async_enqueues_and_drain_work_in_memory() -> None:
    app, t = make_app(None)

    async def main() -> Any:
        from pgjobs.testing import drain_async

        job_id = await t.add.enqueue_async(20, 22)
        ids = await app.enqueue_many_async([t.add.job(1, 1), t.add.job(2, 2)])
        done = await drain_async(app)
        return job_id, ids, done.completed, await app.result_async(job_id)

    with in_memory(app):
        job_id, ids, completed, result = asyncio.run(main())
    assert (job_id, ids, completed, result) == (1, [2, 3], 3, 42)


def test_a_job_not_run_yet_is_a_timeout_not_a_wait() -> None:
    app, t = make_app(None)
    with in_memory(app):
        job_id = t.add.enqueue(1, 1)
        with pytest.raises(TimeoutError, match=f"job {job_id} did not finish"):
            app.result(job_id, timeout=30)


def test_bad_uses_are_refused_clearly(dsn: str) -> None:
    app, _ = make_app(None)
    other, other_tasks = make_app(dsn)
    try:
        with in_memory(app):
            # Another App would need its database: refused, nothing written.
            with pytest.raises(ConfigurationError, match="not in memory"):
                other_tasks.add.enqueue(1, 1)
            with pytest.raises(ConfigurationError, match="does not nest"), in_memory(app):
                pass
        with psycopg.connect(dsn) as conn:
            (count,) = conn.execute("SELECT count(*) FROM pgjobs.jobs").fetchone() or (None,)
        assert count == 0
        # A task registered by another App.
        mixed = pgjobs.App()
        mixed.tasks["add"] = other_tasks.add
        with pytest.raises(ConfigurationError, match="tasks of another App"), in_memory(mixed):
            pass
    finally:
        other.close()


def test_a_transactional_task_fails_in_memory() -> None:
    app = pgjobs.App()

    @app.task(name="charge", transactional=True, max_attempts=1)
    async def charge(order_id: int) -> None:
        del order_id

    with in_memory(app):
        job_id = charge.enqueue(1)
        drain(app)
        with pytest.raises(JobFailedError, match="transaction"):
            app.result(job_id)
