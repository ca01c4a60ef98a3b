"""The rescuer on a real PostgreSQL: a dead worker's jobs go back to the queue, or fail."""

from __future__ import annotations

import asyncio
from typing import Any

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

from pgjobs import _sql
from pgjobs._names import LIVENESS_LOCK_CLASSID, liveness_lock_objid
from pgjobs.worker._rescuer import Rescuer, rescue_once
from tests.integration.test_plans import _prepare

Conn = psycopg.Connection[tuple[Any, ...]]


def rows(conn: Conn, sql: str) -> list[tuple[Any, ...]]:
    return conn.execute(sql).fetchall()


def add_worker(conn: Conn, last_seen: str) -> int:
    row = conn.execute(
        "INSERT INTO pgjobs.workers (host, pid, queues, concurrency, last_seen_at)"
        " VALUES ('h', 1, ARRAY['default'], 1, now() - %s::interval) RETURNING id",
        (last_seen,),
    ).fetchone()
    assert row is not None
    return int(row[0])


def add_running_jobs(conn: Conn, worker_id: int, attempts: list[int]) -> None:
    """One running job per entry of `attempts`, on that attempt of 2, held by `worker_id`."""
    conn.execute(
        "INSERT INTO pgjobs.jobs (task, status, worker_id, attempts, max_attempts, started_at)"
        " SELECT 'orphan', 'running', %s, a, 2, now() FROM unnest(%s::int[]) AS a",
        (worker_id, attempts),
    )


def test_rescue_returns_a_dead_workers_jobs(dsn: str, conn: Conn) -> None:
    dead = add_worker(conn, "1 hour")
    add_running_jobs(conn, dead, [1, 2])  # job 1 on its 1st attempt, job 2 on its 2nd and last

    async def rescue() -> dict[str, int]:
        async with AsyncConnectionPool(dsn, min_size=1, open=False) as pool:
            return await rescue_once(pool, stale_after=30)

    assert asyncio.run(rescue()) == {
        "dead_workers": 1,
        "lost_locks": 0,
        "requeued": 1,
        "failed": 1,
        "cancelled": 0,
    }
    result = rows(
        conn, "SELECT id, status, attempts, errors->-1->>'type' FROM pgjobs.jobs ORDER BY id"
    )
    assert result == [(1, "queued", 1, "pgjobs.WorkerLost"), (2, "failed", 2, "pgjobs.WorkerLost")]
    assert rows(conn, "SELECT count(*) FROM pgjobs.workers") == [(0,)]


def test_a_pass_rescues_only_workers_silent_for_longer_than_stale_after(
    dsn: str, conn: Conn
) -> None:
    dead = add_worker(conn, "1 minute")
    alive = add_worker(conn, "5 seconds")
    add_running_jobs(conn, dead, [1])
    add_running_jobs(conn, alive, [1])

    async def one_pass() -> None:
        async with AsyncConnectionPool(dsn, min_size=1, open=False) as pool:
            await Rescuer(pool, stale_after=30).run_once()

    asyncio.run(one_pass())
    assert rows(conn, "SELECT id FROM pgjobs.workers") == [(alive,)]
    assert rows(conn, "SELECT worker_id, status::text FROM pgjobs.jobs ORDER BY id") == [
        (None, "queued"),
        (alive, "running"),
    ]


# -- the liveness lock -------------------------------------------------------
#
# A worker that LISTENs holds a session advisory lock on its listener's
# connection (pgjobs/sql/liveness_lock.sql) and its row is marked; the
# server frees the lock when that connection ends, and the rescuer takes a
# marked worker whose lock has been missing for `grace` seconds for dead,
# however fresh its heartbeat. These tests hold the lock on a connection of
# their own, with the listener's statement, and end it as a SIGKILL would.


def hold_liveness_lock(dsn: str, worker_id: int) -> Conn:
    """A session holding `worker_id`'s liveness lock, taken as the listener takes it."""
    session = psycopg.connect(dsn, autocommit=True, row_factory=dict_row)
    row = session.execute(
        _sql.psycopg("liveness_lock"),
        {
            "classid": LIVENESS_LOCK_CLASSID,
            "worker_id": worker_id,
            "objid": liveness_lock_objid(worker_id),
        },
    ).fetchone()
    assert row is not None
    assert row["held"], row
    return session  # type: ignore[return-value]


def passes(dsn: str, rescuer_args: dict[str, Any], actions: list[Any]) -> list[dict[str, Any]]:
    """Run one rescuer pass per action (a callable run first, or a pause in seconds)."""

    async def main() -> list[dict[str, Any]]:
        seen = []
        async with AsyncConnectionPool(dsn, min_size=1, open=False) as pool:
            rescuer = Rescuer(pool, **rescuer_args)
            for action in actions:
                if callable(action):
                    action()
                else:
                    await asyncio.sleep(action)
                await rescuer.run_once()
                seen.append(dict(rescuer.suspects))
        return seen

    return asyncio.run(main())


#: A short grace, and no settling: the test's connections are all young.
QUICK = {"stale_after": 30, "grace": 0.3, "settle": 0, "interval": 0.1}


def test_a_worker_whose_lock_is_released_is_dead_while_its_heartbeat_is_fresh(
    dsn: str, conn: Conn
) -> None:
    victim = add_worker(conn, "0 seconds")
    add_running_jobs(conn, victim, [1])
    session = hold_liveness_lock(dsn, victim)
    assert rows(conn, "SELECT meta->'liveness_lock' FROM pgjobs.workers") == [(True,)]
    # pg_locks shows the key as _names.py documents it.
    assert rows(
        conn,
        "SELECT objid::bigint, objsubid FROM pg_locks WHERE locktype = 'advisory'"
        f" AND classid = {LIVENESS_LOCK_CLASSID} AND granted"
        # pg_locks lists the whole server's: other databases' workers too.
        " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
    ) == [(victim, 2)]
    seen = passes(dsn, QUICK, [0, session.close, 0, 0.4])
    # Held: nobody suspected. Released: suspected on that pass and the next
    # (the grace is not over), dead on the first pass after the grace.
    assert [list(s) for s in seen] == [[], [victim], [victim], []]
    assert rows(conn, "SELECT count(*) FROM pgjobs.workers") == [(0,)]
    ((status, worker, errors),) = rows(
        conn, "SELECT status::text, worker_id, errors FROM pgjobs.jobs"
    )
    assert (status, worker) == ("queued", None)
    assert errors[-1]["type"] == "pgjobs.WorkerLost"
    assert "liveness lock was released" in errors[-1]["message"]
    assert errors[-1]["worker_id"] == victim  # who ran the lost attempt


def test_a_lock_back_within_the_grace_saves_the_worker(dsn: str, conn: Conn) -> None:
    worker = add_worker(conn, "0 seconds")
    add_running_jobs(conn, worker, [1])
    sessions = [hold_liveness_lock(dsn, worker)]

    def reconnect() -> None:
        sessions.append(hold_liveness_lock(dsn, worker))

    try:
        # Missing on one pass, back on the next; missing again later: the
        # grace starts over, it does not add up.
        seen = passes(
            dsn, QUICK, [sessions[0].close, reconnect, 0.4, lambda: sessions[-1].close(), 0.2]
        )
    finally:
        for session in sessions:
            session.close()
    assert [list(s) for s in seen] == [[worker], [], [], [worker], [worker]]
    assert rows(conn, "SELECT worker_id, status::text FROM pgjobs.jobs") == [(worker, "running")]


def test_a_worker_that_never_held_a_lock_lives_by_its_heartbeat(dsn: str, conn: Conn) -> None:
    """A poll-only worker (--no-listen) is never marked: only a stale heartbeat kills it."""
    polling = add_worker(conn, "0 seconds")
    add_running_jobs(conn, polling, [1])
    seen = passes(dsn, QUICK, [0, 0.4, 0])
    assert [list(s) for s in seen] == [[], [], []]
    assert rows(conn, "SELECT worker_id, status::text FROM pgjobs.jobs") == [(polling, "running")]


def test_a_lock_held_in_another_database_does_not_keep_a_worker_alive(
    dsn: str, conn: Conn, server_dsn: str
) -> None:
    """Advisory locks belong to a database: another database's worker 1 is not ours."""
    worker = add_worker(conn, "0 seconds")
    ours = hold_liveness_lock(dsn, worker)
    ours.execute("SELECT 1")
    other = psycopg.connect(server_dsn, autocommit=True)
    try:
        assert conninfo_to_dict(server_dsn).get("dbname") != conninfo_to_dict(dsn).get("dbname")
        other.execute(
            "SELECT pg_advisory_lock(%s, %s)", (LIVENESS_LOCK_CLASSID, liveness_lock_objid(worker))
        )
        seen = passes(dsn, QUICK, [ours.close])
    finally:
        other.close()
    assert [list(s) for s in seen] == [[worker]]


def test_missing_locks_count_only_once_the_databases_connections_have_settled(
    dsn: str, conn: Conn
) -> None:
    """After a restart every lock is gone at once: the heartbeat alone decides for a while."""
    worker = add_worker(conn, "0 seconds")
    add_running_jobs(conn, worker, [1])
    hold_liveness_lock(dsn, worker).close()
    seen = passes(dsn, {**QUICK, "settle": 3600}, [0, 0.4, 0])
    assert [list(s) for s in seen] == [[], [], []]
    assert rows(conn, "SELECT worker_id, status::text FROM pgjobs.jobs") == [(worker, "running")]


def test_a_gap_between_passes_forgets_what_was_seen(dsn: str, conn: Conn) -> None:
    """A lock missing before and after a gap may have been back meanwhile: the grace starts over."""
    worker = add_worker(conn, "0 seconds")
    add_running_jobs(conn, worker, [1])
    hold_liveness_lock(dsn, worker).close()
    seen = passes(dsn, {**QUICK, "interval": 0.01}, [0, 1.2])
    assert [list(s) for s in seen] == [[worker], [worker]]
    assert rows(conn, "SELECT worker_id, status::text FROM pgjobs.jobs") == [(worker, "running")]


@pytest.mark.parametrize("mode", ["force_generic_plan", "force_custom_plan"])
def test_a_rescue_pass_reads_only_the_running_jobs(dsn: str, mode: str) -> None:
    """It runs every half second: through the running jobs' index, never the whole table."""
    with psycopg.connect(dsn) as session, psycopg.ClientCursor(session) as cur:
        session.execute(
            "INSERT INTO pgjobs.jobs (task, status, worker_id, attempts)"
            " SELECT 't', 'running', 1, 1 FROM generate_series(1, 300)"
        )
        # A backlog in the live table (finished jobs are in another table now).
        session.execute(
            "INSERT INTO pgjobs.jobs_live (task) SELECT 't' FROM generate_series(1, 20000)"
        )
        session.execute("ANALYZE pgjobs.jobs_live, pgjobs.job_history")
        session.execute(f"SET plan_cache_mode = {mode}")
        order = _prepare(session, "rescue")
        params = {
            "stale_after": 30,
            "classid": LIVENESS_LOCK_CLASSID,
            "suspects": [1],
            "suspected_at": [None],
            "grace": 0.8,
            "settle": 3.0,
        }
        values = [params[name] for name in order]
        placeholders = ", ".join(["%s"] * len(values))
        cur.execute(f"EXPLAIN (COSTS OFF) EXECUTE rescue ({placeholders})", values)
        plan = "\n".join(row[0] for row in cur.fetchall())
        session.rollback()
    assert "Seq Scan on jobs" not in plan, plan
    assert "jobs_live_running_worker_idx" in plan, plan
