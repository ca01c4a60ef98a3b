"""The claim: where each queue's search starts, and when it goes back to the start."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from psycopg_pool import AsyncConnectionPool

import pgjobs
from pgjobs.worker import _fetcher
from pgjobs.worker._db import Outage
from pgjobs.worker._fetcher import Fetcher, Slots


@pytest.fixture
def app(dsn):
    application = pgjobs.App(dsn)
    yield application
    application.close()


def _claims(dsn: str, conn: Any, queues: tuple[str, ...], plan: list[Any]) -> list[list[int]]:
    """Run `plan` on one fetcher: an int claims that many; a callable runs between claims."""
    (worker_id,) = conn.execute(
        "INSERT INTO pgjobs.workers (host, pid, queues, concurrency)"
        " VALUES ('test', 1, %s, 10) RETURNING id",
        (list(queues),),
    ).fetchone()

    async def run() -> list[list[int]]:
        async with AsyncConnectionPool(dsn, min_size=1, open=False) as pool:
            fetcher = Fetcher(
                pool,
                worker_id,
                queues,
                Slots(10),
                asyncio.Event(),
                Outage(),
                lambda job: None,
                listen=False,
                poll_interval=1,
            )
            got: list[list[int]] = []
            try:
                for step in plan:
                    if callable(step):
                        step(fetcher)
                    else:
                        got.append([job.id for job in await fetcher.claim(step)])
            finally:
                await fetcher.close()
            return got

    return asyncio.run(run())


def test_a_busy_fetcher_resumes_after_its_last_claim_and_comes_back_for_urgent_jobs(
    app, conn, dsn, monkeypatch
):
    @app.task(name="bulk", priority=pgjobs.Priority.LOW)
    def bulk(n: int) -> None:
        pass

    app.enqueue_many([bulk.job(n) for n in range(30)])  # ids 1..30
    monkeypatch.setattr(_fetcher, "RESCAN_INTERVAL", 3600.0)

    def urgent(_fetcher: Fetcher) -> None:  # id 31, placed before every queued job
        bulk.options(priority=pgjobs.Priority.CRITICAL).enqueue(99)

    def rescan_due(fetcher: Fetcher) -> None:
        fetcher._rescan_at = fetcher._rescan_allowed_at = 0.0

    got = _claims(dsn, conn, ("default",), [10, urgent, 10, rescan_due, 5, 100, 5])
    assert got[0] == list(range(1, 11))
    # The second claim starts after job 10, where the urgent job is not.
    assert got[1] == list(range(11, 21))
    # Going back to the start finds it first.
    assert got[2] == [31, 21, 22, 23, 24]
    # A claim that finds fewer jobs than it asks for sends the next one back
    # to the start too; nothing is left behind.
    assert got[3] == list(range(25, 31))
    assert got[4] == []
    (left,) = conn.execute("SELECT count(*) FROM pgjobs.jobs WHERE status = 'queued'").fetchone()
    assert left == 0


def test_going_back_to_the_start_waits_out_its_own_cost(app, conn, dsn, monkeypatch):
    """While a claim from the start is costly (a held xmin), claims go on from their positions."""

    @app.task(name="bulk", priority=pgjobs.Priority.LOW)
    def bulk(n: int) -> None:
        pass

    app.enqueue_many([bulk.job(n) for n in range(5)])  # ids 1..5
    # Every claim from the start is priced at the longest pause.
    monkeypatch.setattr(_fetcher, "RESCAN_COST_FACTOR", 1e12)
    rescans: list[int] = []

    def urgent(_fetcher: Fetcher) -> None:  # id 6, before every queued job
        bulk.options(priority=pgjobs.Priority.CRITICAL).enqueue(99)

    def more(_fetcher: Fetcher) -> None:  # ids 7..9, after the position
        app.enqueue_many([bulk.job(n) for n in range(3)])

    def count(fetcher: Fetcher) -> None:
        rescans.append(fetcher.rescans)

    def pause_over(fetcher: Fetcher) -> None:
        fetcher._rescan_allowed_at = 0.0

    got = _claims(
        dsn, conn, ("default",), [3, urgent, 10, more, count, 10, count, pause_over, 10, count]
    )
    assert got[0] == [1, 2, 3]
    # Short of 10: the next claim wants the start, but the last one from the
    # start was "costly", so it goes on from job 5: the new jobs, not job 6.
    assert got[1] == [4, 5]
    assert got[2] == [7, 8, 9]
    assert rescans[:2] == [1, 1]
    # Once the pause is over, the claim from the start finds the urgent job.
    assert got[3] == [6]
    assert rescans[2] == 2


def test_positions_are_kept_per_queue_and_paused_queues_are_skipped(app, conn, dsn, monkeypatch):
    @app.task(name="a_job", queue="a")
    def a_job(n: int) -> None:
        pass

    @app.task(name="b_job", queue="b")
    def b_job(n: int) -> None:
        pass

    app.enqueue_many([a_job.job(n) for n in range(4)])  # ids 1..4
    app.enqueue_many([b_job.job(n) for n in range(4)])  # ids 5..8
    monkeypatch.setattr(_fetcher, "RESCAN_INTERVAL", 3600.0)

    def pause_a(_fetcher: Fetcher) -> None:
        conn.execute("INSERT INTO pgjobs.queues (name, paused) VALUES ('a', true)")

    def resume_a(_fetcher: Fetcher) -> None:
        conn.execute("UPDATE pgjobs.queues SET paused = false WHERE name = 'a'")

    got = _claims(dsn, conn, ("a", "b"), [2, pause_a, 3, resume_a, 3])
    # Same priority, so the older jobs of queue a come first.
    assert got[0] == [1, 2]
    assert got[1] == [5, 6, 7]
    assert got[2] == [3, 4, 8]


@pytest.mark.parametrize("queues", [("default",), ("default", "other")])
def test_a_paused_queue_gives_nothing_until_resumed(app, conn, dsn, queues):
    """Both claim statements: the one-queue one, and the one for a list of queues."""

    @app.task(name="held")
    def held(n: int) -> None:
        pass

    app.enqueue_many([held.job(n) for n in range(3)])

    def pause(_fetcher: Fetcher) -> None:
        conn.execute("INSERT INTO pgjobs.queues (name, paused) VALUES ('default', true)")

    def resume(_fetcher: Fetcher) -> None:
        conn.execute("UPDATE pgjobs.queues SET paused = false WHERE name = 'default'")

    got = _claims(dsn, conn, queues, [pause, 10, resume, 1, 10])
    assert got == [[], [1], [2, 3]]


# Two queue names with the same hashtext(): they share a stretch of the fetch
# index, which leads with that hash (migration 0006).
_SAME_HASH = ("q7169", "q122757")


@pytest.mark.parametrize("queues", [(_SAME_HASH[0],), (_SAME_HASH[0], "other")])
def test_a_queue_never_gets_the_jobs_of_a_queue_whose_name_has_the_same_hash(
    app, conn, dsn, queues
):
    """Both claim statements: the one-queue one, and the one for a list of queues."""
    mine, theirs = _SAME_HASH
    (same,) = conn.execute("SELECT hashtext(%s) = hashtext(%s)", _SAME_HASH).fetchone()
    assert same, "the two names must collide, or this test checks nothing"

    @app.task(name="collide")
    def collide(n: int) -> None:
        pass

    # Their jobs come first in the index order: more urgent, and older.
    app.enqueue_many(
        [collide.options(queue=theirs, priority=pgjobs.Priority.CRITICAL).job(n) for n in range(3)]
    )  # ids 1..3
    app.enqueue_many([collide.options(queue=mine).job(n) for n in range(3)])  # ids 4..6
    got = _claims(dsn, conn, queues, [2, 10, 10])
    assert got == [[4, 5], [6], []]
    rows = conn.execute("SELECT id, status FROM pgjobs.jobs WHERE queue = %s", (theirs,))
    assert sorted(rows.fetchall()) == [(1, "queued"), (2, "queued"), (3, "queued")]


def test_a_pass_dispatches_its_claim_and_says_when_to_come_back(app, conn, dsn):
    """A full batch: claim again at once. Fewer: mark the worker as awaiting
    work, then look once more at once. Nothing, when awaiting: wait."""

    @app.task(name="some")
    def some(n: int) -> None:
        pass

    app.enqueue_many([some.job(n) for n in range(3)])
    (worker_id,) = conn.execute(
        "INSERT INTO pgjobs.workers (host, pid, queues, concurrency)"
        " VALUES ('test', 1, ARRAY['default'], 2) RETURNING id"
    ).fetchone()

    def awaiting() -> bool:
        query = "SELECT awaiting_work FROM pgjobs.workers WHERE id = %s"
        return conn.execute(query, (worker_id,)).fetchone()[0]

    async def run() -> list[tuple[float | None, list[int], bool]]:
        dispatched: list[int] = []
        slots = Slots(2)

        def dispatch(job: Any) -> None:
            slots.take()
            dispatched.append(job.id)

        async with AsyncConnectionPool(dsn, min_size=1, open=False) as pool:
            fetcher = Fetcher(
                pool,
                worker_id,
                ("default",),
                slots,
                asyncio.Event(),
                Outage(),
                dispatch,
                listen=True,
                poll_interval=1,
            )
            passes = []
            try:
                for _ in range(2):
                    passes.append((await fetcher.run_once(), list(dispatched), awaiting()))
                slots.release()
                slots.release()
                for _ in range(2):
                    passes.append((await fetcher.run_once(), list(dispatched), awaiting()))
            finally:
                await fetcher.close()
            return passes

    assert asyncio.run(run()) == [
        (0, [1, 2], False),  # a full batch: come back at once
        (None, [1, 2], False),  # every slot is busy: wait for one
        (0, [1, 2, 3], True),  # fewer than asked for: awaiting, and one more look
        (None, [1, 2, 3], True),  # nothing left: wait for a wake-up
    ]
