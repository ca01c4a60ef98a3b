"""Leader election on a real PostgreSQL: one leader, and failover when its backend dies."""

from __future__ import annotations

import asyncio
import os
import time
from typing import Any

import psycopg
from psycopg_pool import AsyncConnectionPool

from pgjobs._names import (
    APP_NAME_LEADER,
    LEADER_LOCK_CLASSID,
    LEADER_LOCK_KEY,
    LEADER_LOCK_OBJID,
    with_pid,
)
from pgjobs.worker._db import Outage, fetch
from pgjobs.worker._leader import Leader, LeaderSession, lock_free
from pgjobs.worker._service import Service

#: What the tests allow for a failover: the documented "about one leader_interval",
#: plus slack for a loaded CI machine.
INTERVAL = 0.3
FAILOVER_LIMIT = INTERVAL * 1.2 + 2.0

HOLDER_SQL = (
    "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted AND objsubid = 1"
    " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
    " AND classid::bigint = %s AND objid::bigint = %s"
)


def lock_holders(conn: psycopg.Connection[Any]) -> list[int]:
    key = LEADER_LOCK_CLASSID, LEADER_LOCK_OBJID
    return [row[0] for row in conn.execute(HOLDER_SQL, key).fetchall()]


class Counter(Service):
    """A duty that counts its passes."""

    name = "count"

    def __init__(self) -> None:
        super().__init__(interval=0.05)
        self.runs = 0

    async def run_once(self) -> float:
        self.runs += 1
        return 0.05


class Candidate:
    """A Leader whose only duty counts its runs."""

    def __init__(self, dsn: str | None, name: str) -> None:
        self.name = name
        self.duty = Counter()
        self.leader = Leader(dsn, [self.duty], Outage(), interval=INTERVAL)
        self.task = asyncio.create_task(self.leader.run())

    @property
    def runs(self) -> int:
        return self.duty.runs

    async def close(self) -> None:
        self.leader.stop()
        await asyncio.wait_for(self.task, 10)


async def wait_for(predicate: Any, within: float) -> float:
    started = time.monotonic()
    while not predicate():
        if time.monotonic() - started > within:
            raise AssertionError(f"condition not met within {within}s")
        await asyncio.sleep(0.01)
    return time.monotonic() - started


def test_exactly_one_leader_and_it_holds_the_lock(dsn: str, conn: psycopg.Connection[Any]) -> None:
    async def main() -> None:
        candidates = [Candidate(dsn, f"c{i}") for i in range(4)]
        try:
            await wait_for(lambda: any(c.leader.is_leader for c in candidates), 5)
            await asyncio.sleep(INTERVAL * 4)  # let the others try, and fail, a few times
            leaders = [c for c in candidates if c.leader.is_leader]
            assert len(leaders) == 1
            assert lock_holders(conn) == [leaders[0].leader.backend_pid]
            assert leaders[0].runs > 5
            assert all(c.runs == 0 for c in candidates if c is not leaders[0])
        finally:
            for c in candidates:
                await c.close()
        assert lock_holders(conn) == []  # stepping down frees the lock

    asyncio.run(main())


def test_new_leader_after_the_leaders_backend_is_terminated(
    dsn: str, conn: psycopg.Connection[Any]
) -> None:
    async def main() -> list[float]:
        candidates = [Candidate(dsn, f"c{i}") for i in range(3)]
        failovers = []
        try:
            await wait_for(lambda: any(c.leader.is_leader for c in candidates), 5)
            for _ in range(3):
                (old,) = [c for c in candidates if c.leader.is_leader]
                old_pid = old.leader.backend_pid
                old_terms = sum(c.leader.terms for c in candidates)
                conn.execute("SELECT pg_terminate_backend(%s)", (old_pid,))
                # A new term begins (possibly the old process again, on a new backend).
                took = await wait_for(
                    lambda: (
                        sum(c.leader.terms for c in candidates) > old_terms  # noqa: B023
                        and any(c.leader.is_leader for c in candidates)
                    ),
                    FAILOVER_LIMIT,
                )
                failovers.append(took)
                await asyncio.sleep(0.2)
                (new,) = [c for c in candidates if c.leader.is_leader]
                assert new.leader.backend_pid != old_pid
                assert lock_holders(conn) == [new.leader.backend_pid]
                runs = old.runs
                if new is not old:
                    await asyncio.sleep(0.3)
                    assert old.runs == runs  # the deposed leader runs no duty
        finally:
            for c in candidates:
                await c.close()
        return failovers

    failovers = asyncio.run(main())
    print(f"failover times after pg_terminate_backend: {[round(f, 2) for f in failovers]} s")
    assert max(failovers) < FAILOVER_LIMIT


def test_a_stopping_leader_hands_over_at_once(dsn: str) -> None:
    async def main() -> float:
        first = Candidate(dsn, "first")
        await wait_for(lambda: first.leader.is_leader, 5)
        second = Candidate(dsn, "second")
        try:
            await asyncio.sleep(INTERVAL * 2)
            assert not second.leader.is_leader
            await first.close()
            return await wait_for(lambda: second.leader.is_leader, FAILOVER_LIMIT)
        finally:
            await second.close()

    assert asyncio.run(main()) < FAILOVER_LIMIT


def test_lockless_leaders_all_run_their_duties() -> None:
    async def main() -> None:
        a, b = Candidate(None, "a"), Candidate(None, "b")
        try:
            await wait_for(lambda: a.runs > 3 and b.runs > 3, 5)
            assert a.leader.is_leader
            assert b.leader.is_leader
        finally:
            await a.close()
            await b.close()

    asyncio.run(main())


def test_a_pass_connects_then_campaigns_then_leads(dsn: str, conn: psycopg.Connection[Any]) -> None:
    """One pass at a time: connect, take the lock (or not), run the due duties."""

    async def main() -> None:
        first, second = Counter(), Counter()
        leader = Leader(dsn, [first], Outage(), interval=INTERVAL)
        other = Leader(dsn, [second], Outage(), interval=INTERVAL)
        try:
            assert await leader.run_once() == 0  # connected
            assert not leader.is_leader
            await leader.run_once()
            assert leader.is_leader
            assert first.runs == 1  # every duty is due on election
            assert lock_holders(conn) == [leader.backend_pid]
            assert await other.run_once() == 0
            assert await other.run_once() is None  # the lock is taken: try again later
            assert not other.is_leader
            assert second.runs == 0
        finally:
            await leader.close()
            await other.close()
        assert lock_holders(conn) == []  # closing resigns

    asyncio.run(main())


def test_a_leader_that_lost_its_lock_steps_down_before_any_duty(
    dsn: str, conn: psycopg.Connection[Any]
) -> None:
    async def main() -> None:
        duty = Counter()
        leader = Leader(dsn, [duty], Outage(), interval=INTERVAL)
        try:
            await leader.run_once()
            await leader.run_once()
            assert leader.is_leader
            assert duty.runs == 1
            # The lock goes, while its session lives on: the check before
            # the next duty must notice.
            await leader._query(leader._conn, "leader_unlock", {"key": LEADER_LOCK_KEY})
            assert lock_holders(conn) == []
            leader._due = [0.0]  # the duty is due again
            assert await leader.run_once() == 0
            assert not leader.is_leader
            assert duty.runs == 1
        finally:
            await leader.close()

    asyncio.run(main())


def test_stopping_the_leader_stops_its_duties() -> None:
    """A pruner's long pass must not keep a stepping-down leader (and its worker) waiting."""
    duty = Counter()
    leader = Leader(None, [duty], Outage(), interval=INTERVAL)
    leader.stop()
    assert duty.stopping


LEADER_BACKENDS = (
    "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s"
    " AND datname = current_database()"
)


class BackendPid(Service):
    """A duty that notes the backend its statements run on."""

    name = "backend"

    def __init__(self, source: Any) -> None:
        super().__init__(interval=0.05)
        self.source = source
        self.pids: set[int] = set()

    async def run_once(self) -> float:
        assert await fetch(self.source, "health_check", {}) == [{"ok": 1}]
        async with self.source.connection() as conn:
            cur = await conn.execute("SELECT pg_backend_pid()")
            self.pids.add((await cur.fetchone())[0])
        return 0.05


def test_a_follower_holds_no_connection_and_the_duties_run_on_the_leaders(
    dsn: str, conn: psycopg.Connection[Any]
) -> None:
    """With lock_free a follower connects only to take a free lock; duties use its session."""

    async def main() -> None:
        async with AsyncConnectionPool(dsn, min_size=1, max_size=1, open=False) as pool:
            leaders = []
            for _ in range(2):
                session = LeaderSession()
                duty = BackendPid(session)
                leaders.append(
                    (
                        Leader(
                            dsn,
                            [duty],
                            Outage(),
                            interval=INTERVAL,
                            session=session,
                            lock_free=lambda: lock_free(pool),
                        ),
                        duty,
                    )
                )
            (first, first_duty), (second, second_duty) = leaders
            try:
                await first.run_once()  # the lock is free: connects and takes it at once
                assert first.is_leader
                assert first_duty.pids == {first.backend_pid}
                name = with_pid(APP_NAME_LEADER, os.getpid())
                assert conn.execute(LEADER_BACKENDS, (name,)).fetchone()[0] == 1
                for _ in range(3):
                    assert await second.run_once() is None  # taken: no connection
                    assert not second.is_leader
                    assert second._conn is None
                assert conn.execute(LEADER_BACKENDS, (name,)).fetchone()[0] == 1
                assert second_duty.pids == set()
                await first.close()  # resigns
                await second.run_once()
                assert second.is_leader
                assert second_duty.pids == {second.backend_pid}
                assert lock_holders(conn) == [second.backend_pid]
            finally:
                await first.close()
                await second.close()
            assert lock_holders(conn) == []

    asyncio.run(main())
