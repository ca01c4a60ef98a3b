"""Cron firing on a real PostgreSQL: schedules kept in step with code, ticks fired exactly once."""

from __future__ import annotations

import asyncio
import datetime as dt
import itertools
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import psycopg
import pytest
from psycopg_pool import AsyncConnectionPool

import pgjobs
from pgjobs.errors import ConfigurationError
from pgjobs.worker._scheduler import MAX_WAIT, Scheduler, sync_schedules

T = TypeVar("T")
Conn = psycopg.Connection[tuple[Any, ...]]


def with_pool(dsn: str, body: Callable[[AsyncConnectionPool[Any]], Awaitable[T]]) -> T:
    """Run `body(pool)` in a fresh event loop with a fresh pool."""

    async def main() -> T:
        pool: AsyncConnectionPool[Any] = AsyncConnectionPool(
            dsn, min_size=1, max_size=4, open=False
        )
        await pool.open(wait=True)
        try:
            return await body(pool)
        finally:
            await pool.close()

    return asyncio.run(main())


def make_app() -> pgjobs.App:
    app = pgjobs.App()

    @app.task(name="report", queue="reports", priority=1, max_attempts=7)
    def report(kind: str = "daily") -> None:
        """Does nothing."""

    return app


def schedules(conn: Conn) -> dict[str, dict[str, Any]]:
    cur = conn.execute("SELECT * FROM pgjobs.schedules ORDER BY name")
    assert cur.description is not None
    names = [c.name for c in cur.description]
    return {row[0]: dict(zip(names, row, strict=True)) for row in cur.fetchall()}


def cron_jobs(conn: Conn, schedule: str) -> list[tuple[str, int]]:
    """(tick, jobs for it) per tick fired for `schedule`."""
    return [
        (str(tick), int(count))
        for tick, count in conn.execute(
            "SELECT meta->'cron'->>'tick', count(*) FROM pgjobs.jobs"
            " WHERE meta->'cron'->>'schedule' = %s GROUP BY 1 ORDER BY 1",
            (schedule,),
        ).fetchall()
    ]


def test_sync_upserts_and_marks_removed_schedules_inactive(dsn: str, conn: Conn) -> None:
    first = make_app()
    first.schedule("a", "0 * * * *", "report")
    first.schedule("b", "*/5 * * * *", "report", args={"kind": "weekly"}, tz="Europe/Paris")
    result = with_pool(dsn, lambda pool: sync_schedules(pool, first))
    assert sorted(result["changed"]) == ["a", "b"]
    rows = schedules(conn)
    assert rows["b"]["timezone"] == "Europe/Paris"
    assert rows["b"]["args"] == {"kind": "weekly"}
    assert rows["b"]["queue"] == "reports"  # the task's default
    assert rows["b"]["priority"] == 1
    assert rows["b"]["max_attempts"] == 7
    assert rows["a"]["active"]
    assert rows["a"]["next_fire_at"] is not None
    assert rows["a"]["next_fire_at"].minute == 0

    # Syncing the same code again changes nothing.
    assert with_pool(dsn, lambda pool: sync_schedules(pool, first)) == {
        "changed": [],
        "removed": [],
    }

    fired = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    conn.execute("UPDATE pgjobs.schedules SET last_fired_at = %s WHERE name = 'b'", (fired,))
    second = make_app()
    second.schedule("b", "*/10 * * * *", "report", backfill="1h", skip_if_running=True)
    second.schedule("c", "@daily", "report", priority=4, queue="slow")
    result = with_pool(dsn, lambda pool: sync_schedules(pool, second))
    assert sorted(result["changed"]) == ["b", "c"]
    assert result["removed"] == ["a"]
    rows = schedules(conn)
    assert not rows["a"]["active"]  # kept, inactive
    assert rows["a"]["removed_at"] is not None
    assert rows["b"]["expression"] == "*/10 * * * *"
    assert rows["b"]["backfill"] == dt.timedelta(hours=1)
    assert rows["b"]["skip_if_running"]
    assert rows["b"]["last_fired_at"] == fired  # the watermark survives a redefinition
    assert (rows["c"]["queue"], rows["c"]["priority"]) == ("slow", 4)

    # Back in the code: active again, from now on.
    before = rows["a"]["active_since"]
    with_pool(dsn, lambda pool: sync_schedules(pool, first))
    rows = schedules(conn)
    assert rows["a"]["active"]
    assert rows["a"]["removed_at"] is None
    assert rows["a"]["active_since"] > before
    assert not rows["c"]["active"]


def test_an_inactive_schedule_does_not_fire(dsn: str, conn: Conn) -> None:
    app = make_app()
    app.schedule("gone", "* * * * * *", "report")
    with_pool(dsn, lambda pool: sync_schedules(pool, app))
    with_pool(dsn, lambda pool: sync_schedules(pool, make_app()))  # removed from the code
    conn.execute("UPDATE pgjobs.schedules SET active_since = now() - interval '1 minute'")
    with_pool(dsn, lambda pool: Scheduler(pool, grace=60).run_once())
    assert cron_jobs(conn, "gone") == []


def test_a_paused_schedule_does_not_fire_and_a_worker_does_not_unpause_it(
    dsn: str, conn: Conn
) -> None:
    app = make_app()
    app.schedule("held", "* * * * * *", "report")
    with_pool(dsn, lambda pool: sync_schedules(pool, app))
    conn.execute("UPDATE pgjobs.schedules SET paused = true")
    with_pool(dsn, lambda pool: sync_schedules(pool, app))  # a worker starts: still paused
    assert schedules(conn)["held"]["paused"] is True
    conn.execute("UPDATE pgjobs.schedules SET active_since = now() - interval '3 seconds'")
    with_pool(dsn, lambda pool: Scheduler(pool, grace=60).run_once())
    assert cron_jobs(conn, "held") == []
    conn.execute("UPDATE pgjobs.schedules SET paused = false")
    with_pool(dsn, lambda pool: Scheduler(pool, grace=60).run_once())
    assert cron_jobs(conn, "held") != []


def test_a_tick_enqueues_an_ordinary_job(dsn: str, conn: Conn) -> None:
    app = make_app()
    app.schedule("weekly", "* * * * * *", "report", args={"kind": "weekly"}, priority=3)
    with_pool(dsn, lambda pool: sync_schedules(pool, app))
    conn.execute("UPDATE pgjobs.schedules SET active_since = now() - interval '3 seconds'")
    with_pool(dsn, lambda pool: Scheduler(pool, grace=10).run_once())
    jobs = conn.execute(
        "SELECT task, args, queue, priority, max_attempts, run_at, meta, status, fingerprint"
        " FROM pgjobs.jobs ORDER BY run_at"
    ).fetchall()
    assert len(jobs) in (3, 4)  # the ticks of the last 3 seconds
    task, args, queue, priority, max_attempts, run_at, meta, status, fingerprint = jobs[-1]
    assert (task, args, queue) == ("report", {"kind": "weekly"}, "reports")
    assert (priority, max_attempts) == (3, 7)
    assert (status, fingerprint) == ("queued", None)
    assert meta["cron"] == {"schedule": "weekly", "tick": run_at.astimezone(dt.UTC).isoformat()}
    row = schedules(conn)["weekly"]
    assert row["last_fired_at"] == run_at
    assert row["next_fire_at"] == run_at + dt.timedelta(seconds=1)


def test_concurrent_schedulers_fire_each_tick_exactly_once(dsn: str, conn: Conn) -> None:
    """Two 'leaders' (the lock is not involved at all) race on the same ticks."""
    app = make_app()
    app.schedule("race", "* * * * * *", "report", backfill="2m")
    app.schedule("race-skip", "* * * * * *", "report", backfill="2m", skip_if_running=True)
    with_pool(dsn, lambda pool: sync_schedules(pool, app))
    conn.execute("UPDATE pgjobs.schedules SET active_since = now() - interval '90 seconds'")

    async def race(pool: AsyncConnectionPool[Any]) -> list[int]:
        async def one_leader(limit: int) -> int:
            own: AsyncConnectionPool[Any] = AsyncConnectionPool(
                dsn, min_size=1, max_size=2, open=False
            )
            await own.open(wait=True)
            try:
                # Small rounds, so the two interleave tick by tick.
                scheduler = Scheduler(own, grace=10, limit=limit)
                for _ in range(40):
                    await scheduler.run_once()
                return scheduler.fired
            finally:
                await own.close()

        return list(await asyncio.gather(one_leader(3), one_leader(5), one_leader(7)))

    fired = with_pool(dsn, race)
    per_tick = cron_jobs(conn, "race")
    assert per_tick, "nothing fired"
    assert all(count == 1 for _, count in per_tick), [p for p in per_tick if p[1] != 1]
    ticks = [dt.datetime.fromisoformat(t) for t, _ in per_tick]
    # Every tick from the start of the window on, without a gap.
    assert all(b - a == dt.timedelta(seconds=1) for a, b in itertools.pairwise(ticks))
    assert len(ticks) >= 90
    # All three did fire some: the race was real.
    assert sum(fired) == len(per_tick) + 1  # + the one job of race-skip (its fingerprint held)
    assert sum(1 for f in fired if f > 0) >= 2
    assert len(cron_jobs(conn, "race-skip")) == 1


def test_skip_if_running_skips_while_the_previous_run_is_active(dsn: str, conn: Conn) -> None:
    app = make_app()
    app.schedule("solo", "* * * * * *", "report", skip_if_running=True)
    with_pool(dsn, lambda pool: sync_schedules(pool, app))
    conn.execute("UPDATE pgjobs.schedules SET active_since = now() - interval '5 seconds'")
    with_pool(dsn, lambda pool: Scheduler(pool, grace=10).run_once())
    rows = conn.execute("SELECT id, fingerprint FROM pgjobs.jobs").fetchall()
    assert [fingerprint for _, fingerprint in rows] == ["cron:solo"]  # the rest were skipped
    watermark = schedules(conn)["solo"]["last_fired_at"]
    assert watermark is not None  # skipped ticks are consumed, not retried

    conn.execute("UPDATE pgjobs.jobs SET status = 'succeeded', finished_at = now()")
    conn.execute("SELECT pg_sleep(1.1)")
    with_pool(dsn, lambda pool: Scheduler(pool, grace=10).run_once())
    assert conn.execute("SELECT count(*) FROM pgjobs.jobs").fetchone() == (2,)


def test_missed_ticks_are_skipped_unless_within_backfill(dsn: str, conn: Conn) -> None:
    app = make_app()
    app.schedule("plain", "* * * * * */10", "report")
    app.schedule("backfilled", "* * * * * */10", "report", backfill="10m")
    with_pool(dsn, lambda pool: sync_schedules(pool, app))
    # Every worker was down for the last five minutes.
    conn.execute(
        "UPDATE pgjobs.schedules SET active_since = now() - interval '1 hour',"
        " last_fired_at = date_trunc('minute', now()) - interval '5 minutes'"
    )
    with_pool(dsn, lambda pool: Scheduler(pool, grace=2).run_once())
    assert len(cron_jobs(conn, "backfilled")) >= 30  # every tick of the five minutes
    assert all(count == 1 for _, count in cron_jobs(conn, "backfilled"))
    assert len(cron_jobs(conn, "plain")) <= 1  # only a tick of the last 2 s, if any


def test_worker_rejects_a_schedule_of_an_unregistered_task(dsn: str, conn: Conn) -> None:
    app = make_app()
    app.schedule("orphan", "@hourly", "no.such.task")
    with pytest.raises(ConfigurationError, match=r"'orphan'.*'no\.such\.task'.*not registered"):
        asyncio.run(pgjobs.Worker(app).run())
    assert schedules(conn) == {}
    assert conn.execute("SELECT count(*) FROM pgjobs.workers").fetchone() == (0,)


def test_a_pass_asks_to_come_back_for_the_next_tick(dsn: str, conn: Conn) -> None:
    """At most MAX_WAIT later, so that schedules added meanwhile are seen soon."""
    idle = with_pool(dsn, lambda pool: Scheduler(pool, grace=10).run_once())
    assert idle > MAX_WAIT  # nothing scheduled: the longest wait, plus a margin
    app = make_app()
    app.schedule("soon", "* * * * * *", "report")
    with_pool(dsn, lambda pool: sync_schedules(pool, app))
    assert with_pool(dsn, lambda pool: Scheduler(pool, grace=10).run_once()) < idle
