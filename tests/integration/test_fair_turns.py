"""Keys taking turns (migration 0017): what claim_keyed.sql and claim_limited.sql take.

(A job's key, and who claims it, are what these tests look at; the order
among keys follows their hashes, so a test that cares compares rounds.)
"""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

import psycopg
import pytest
from psycopg_pool import AsyncConnectionPool

import pgjobs
from pgjobs import _sql
from pgjobs.worker._db import Outage
from pgjobs.worker._fetcher import Fetcher, Slots
from pgjobs.worker._rescuer import rescue_once
from tests.readme import snippet

Conn = psycopg.Connection[Any]


@pytest.fixture
def worker_row(conn: Conn) -> int:
    conn.execute(
        "INSERT INTO pgjobs.workers (id, host, pid, queues, concurrency)"
        " OVERRIDING SYSTEM VALUE VALUES (1, 'h', 1, ARRAY['shared', 'limited'], 50),"
        " (2, 'h', 2, ARRAY['shared', 'limited'], 50)"
    )
    return 1


def add(conn: Conn, queue: str, keys: list[str | None], **extra: Any) -> list[int]:
    """One job per entry of `keys`, in that order (pgjobs.enqueue(), as any language would)."""
    args = "".join(f", {name} => %({name})s" for name in extra)
    return [
        conn.execute(
            f"SELECT pgjobs.enqueue('t', queue => %(queue)s, key => %(key)s{args})",
            {"queue": queue, "key": key, **extra},
        ).fetchone()[0]
        for key in keys
    ]


def keyed(
    conn: Conn, limit: int, turn: int | None = None, queue: str = "shared"
) -> tuple[list[int], int | None]:
    """claim_keyed.sql for worker 1: the ids claimed, in claim order, and the turn to carry."""
    rows = conn.execute(
        _sql.psycopg("claim_keyed"),
        {"queue": queue, "limit": limit, "worker_id": 1, "after_turn": turn},
    ).fetchall()
    return [row[0] for row in rows], (rows[-1][-1] if rows else turn)


def limited(
    conn: Conn, limit: int, turn: int | None = None, ended: list[int] | None = None, worker: int = 1
) -> tuple[list[int], int | None]:
    rows = conn.execute(
        _sql.psycopg("claim_limited"),
        {
            "queue": "limited",
            "limit": limit,
            "worker_id": worker,
            "after_turn": turn,
            "ended": ended or [],
        },
    ).fetchall()
    return [row[0] for row in rows if row[0] is not None], (rows[-1][-1] if rows else turn)


def keys_of(conn: Conn, ids: list[int]) -> list[str | None]:
    found = dict(
        conn.execute("SELECT id, key FROM pgjobs.jobs WHERE id = ANY (%s)", [ids]).fetchall()
    )
    return [found[i] for i in ids]


@pytest.mark.usefixtures("worker_row")
def test_a_tenants_single_job_waits_one_turn_behind_anothers_backlog(conn):
    backlog = add(conn, "shared", ["a"] * 200)
    (single,) = add(conn, "shared", ["b"])
    first, turn = keyed(conn, 2)
    assert sorted(first) == sorted([backlog[0], single])
    # Afterwards, only A is left: its jobs in order.
    assert keyed(conn, 3, turn)[0] == backlog[1:4]


@pytest.mark.usefixtures("worker_row")
def test_keys_take_turns_round_robin_across_claims(conn):
    add(conn, "shared", ["a", "b", "c"] * 3)
    order: list[str | None] = []
    turn = None
    for _ in range(9):
        ids, turn = keyed(conn, 1, turn)
        order.extend(keys_of(conn, ids))
    rounds = [order[i : i + 3] for i in range(0, 9, 3)]
    # Every round serves each key once, in the same order each time.
    assert [sorted(r) for r in rounds] == [["a", "b", "c"]] * 3
    assert rounds[0] == rounds[1] == rounds[2]
    # Each key's jobs run oldest first.
    assert keyed(conn, 5)[0] == []


@pytest.mark.usefixtures("worker_row")
def test_one_claim_goes_round_the_keys_as_often_as_it_needs(conn):
    ids = add(conn, "shared", ["a"] * 4 + ["b"] * 2)
    claimed, _ = keyed(conn, 6)
    assert keys_of(conn, claimed).count("a") == 4
    assert sorted(claimed) == sorted(ids)
    # The first four alternate between the keys.
    assert sorted(keys_of(conn, claimed[:4])) == ["a", "a", "b", "b"]


@pytest.mark.usefixtures("worker_row")
def test_a_more_urgent_job_goes_first_and_a_scheduled_one_waits(conn):
    add(conn, "shared", ["a", "b"])
    (urgent,) = add(conn, "shared", ["c"], priority=0)
    conn.execute(
        "SELECT pgjobs.enqueue('t', queue => 'shared', key => 'd',"
        " run_at => now() + interval '1 hour')"
    )
    claimed, _ = keyed(conn, 10)
    assert claimed[0] == urgent
    assert sorted(keys_of(conn, claimed)) == ["a", "b", "c"]


@pytest.mark.usefixtures("worker_row")
def test_jobs_without_a_key_share_one_turn_per_round(conn):
    add(conn, "shared", [None] * 5 + ["a"] * 5 + ["b"] * 5)
    claimed, turn = keyed(conn, 6)
    assert sorted(keys_of(conn, claimed), key=str) == sorted(
        ["a", "a", "b", "b", None, None], key=str
    )
    # With no keyed job left, the jobs without a key are taken all at once.
    conn.execute("DELETE FROM pgjobs.jobs_live WHERE key IS NOT NULL")
    assert len(keyed(conn, 10, turn)[0]) == 3


@pytest.mark.usefixtures("worker_row")
def test_a_paused_or_limited_queue_is_left_to_its_own_claim(conn):
    add(conn, "shared", ["a", "b"])
    conn.execute("INSERT INTO pgjobs.queues (name, paused) VALUES ('shared', true)")
    assert keyed(conn, 5)[0] == []
    conn.execute("UPDATE pgjobs.queues SET paused = false, concurrency = 5")
    assert keyed(conn, 5)[0] == []
    conn.execute("UPDATE pgjobs.queues SET concurrency = NULL")
    assert len(keyed(conn, 5)[0]) == 2


@pytest.mark.usefixtures("worker_row")
def test_a_job_another_claim_holds_is_skipped_and_that_keys_next_taken(dsn, conn):
    a = add(conn, "shared", ["a"] * 3)
    with psycopg.connect(dsn) as other:
        assert keyed(other, 1)[0] == [a[0]]  # its transaction stays open, the row locked
        claimed, _ = keyed(conn, 2)
        assert claimed == [a[1], a[2]]
        other.rollback()
    assert keyed(conn, 5)[0] == [a[0]]


@pytest.mark.usefixtures("worker_row")
def test_a_cancelled_job_is_not_claimed_and_a_rescued_one_is_again(dsn, conn):
    a = add(conn, "shared", ["a"] * 2)
    (b,) = add(conn, "shared", ["b"])
    conn.execute("SELECT pgjobs.cancel(%s)", [a[0]])
    claimed, _ = keyed(conn, 5)
    assert sorted(claimed) == sorted([a[1], b])
    # Worker 1 dies holding them: the rescuer queues them again, and they take their turns.
    conn.execute("UPDATE pgjobs.workers SET last_seen_at = now() - interval '1 hour' WHERE id = 1")

    async def rescue() -> dict[str, int]:
        async with AsyncConnectionPool(dsn, min_size=1, open=False) as pool:
            return await rescue_once(pool, stale_after=30)

    assert asyncio.run(rescue())["requeued"] == 2
    conn.execute(
        "INSERT INTO pgjobs.workers (id, host, pid, queues, concurrency)"
        " OVERRIDING SYSTEM VALUE VALUES (1, 'h', 1, ARRAY['shared'], 50)"
    )
    assert sorted(keyed(conn, 5)[0]) == sorted([a[1], b])


@pytest.mark.usefixtures("worker_row")
def test_claims_skip_what_a_long_transaction_keeps_in_the_index(dsn, conn):
    """Jobs claimed while a snapshot is held stay in the keyed index, dead: no claim takes them."""
    add(conn, "shared", ["a", "b"] * 20)
    with psycopg.connect(dsn) as holder:
        holder.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        holder.execute("SELECT count(*) FROM pgjobs.jobs_live").fetchone()
        seen: list[int] = []
        turn = None
        for _ in range(10):
            ids, turn = keyed(conn, 4, turn)
            seen.extend(ids)
        assert len(seen) == len(set(seen)) == 40
        assert keyed(conn, 4, turn)[0] == []
        holder.rollback()


# -- with limits (claim_limited.sql) ---------------------------------------------


@pytest.mark.usefixtures("worker_row")
def test_key_concurrency_over_many_keys_takes_one_job_of_each_key_in_turn(conn):
    conn.execute("INSERT INTO pgjobs.queues (name, key_concurrency) VALUES ('limited', 1)")
    keys = [f"k{i}" for i in range(50)]
    add(conn, "limited", keys * 3)
    claimed, turn = limited(conn, 100)
    assert sorted(keys_of(conn, claimed)) == sorted(keys)
    assert limited(conn, 100, turn)[0] == []
    # The jobs this worker finished but has not written the outcomes of leave room.
    done = claimed[:10]
    again, _ = limited(conn, 100, turn, ended=done)
    assert sorted(keys_of(conn, again)) == sorted(keys_of(conn, done))
    # Another worker's finished jobs still count: only the claimer knows its own.
    conn.execute("DELETE FROM pgjobs.jobs_live WHERE id = ANY (%s)", [again])
    assert limited(conn, 100, turn, ended=claimed[10:20], worker=2)[0] == []


@pytest.mark.usefixtures("worker_row")
def test_a_concurrency_limit_shares_its_room_between_keys(conn):
    conn.execute("INSERT INTO pgjobs.queues (name, concurrency) VALUES ('limited', 4)")
    add(conn, "limited", ["big"] * 50)
    add(conn, "limited", ["small"] * 2)
    claimed, turn = limited(conn, 10)
    assert sorted(keys_of(conn, claimed)) == ["big", "big", "small", "small"]
    assert limited(conn, 10, turn)[0] == []
    # Two of them finished here: two more, and "small" has none left.
    claimed, _ = limited(conn, 10, turn, ended=claimed[:2])
    assert keys_of(conn, claimed) == ["big", "big"]


@pytest.mark.usefixtures("worker_row")
def test_a_rate_limit_holds_with_keys_taking_turns(conn):
    conn.execute(
        "INSERT INTO pgjobs.queues (name, rate_limit, rate_burst) VALUES ('limited', '1/h', 3)"
    )
    add(conn, "limited", ["a"] * 5 + ["b"] * 5)
    claimed, turn = limited(conn, 10)
    # The burst's three tokens: the keys' turns, whichever key came first.
    assert sorted(Counter(keys_of(conn, claimed)).values()) == [1, 2]
    assert limited(conn, 10, turn)[0] == []


@pytest.mark.usefixtures("worker_row")
def test_a_rate_that_runs_out_of_tokens_leaves_the_keys_their_turns(conn):
    # One token at a time, and a claim with none before each one that has it
    # (as the fetcher's early look does): every key is served in its turn.
    conn.execute("INSERT INTO pgjobs.queues (name, rate_limit) VALUES ('limited', '1/h')")
    add(conn, "limited", ["a"] * 3 + ["b"] * 3 + ["c"] * 3)
    served: list[str] = []
    turn = None
    for _ in range(6):
        conn.execute("UPDATE pgjobs.queues SET rate_full_at = NULL WHERE name = 'limited'")
        claimed, turn = limited(conn, 10, turn)
        assert len(claimed) == 1
        served += keys_of(conn, claimed)
        assert limited(conn, 10, turn) == ([], turn)  # no token: the turn stays
    assert Counter(served) == {"a": 2, "b": 2, "c": 2}
    # In rounds: each key once before any key twice.
    assert sorted(served[:3]) == ["a", "b", "c"]


# -- the fetcher -------------------------------------------------------------------


def test_the_fetcher_gives_a_keyed_queue_its_turns_and_others_the_fast_claim(dsn, conn):
    conn.execute(
        "INSERT INTO pgjobs.workers (id, host, pid, queues, concurrency)"
        " OVERRIDING SYSTEM VALUE VALUES (1, 'h', 1, ARRAY['shared', 'plain'], 10)"
    )
    backlog = add(conn, "shared", ["a"] * 20)
    (single,) = add(conn, "shared", ["b"])
    plain = add(conn, "plain", [None] * 3)

    async def run() -> tuple[tuple[str, ...], list[int]]:
        async with AsyncConnectionPool(dsn, min_size=1, open=False) as pool:
            fetcher = Fetcher(
                pool,
                1,
                ("plain", "shared"),
                Slots(10),
                asyncio.Event(),
                Outage(),
                lambda job: None,
                listen=False,
                poll_interval=1,
            )
            try:
                jobs = await fetcher.claim_within_limits(6)
            finally:
                await fetcher.close()
            return fetcher.keyed, [job.id for job in jobs]

    keyed_queues, claimed = asyncio.run(run())
    assert keyed_queues == ("shared",)
    # The plain queue's three by the fast claim, then the keyed queue's turns: b's job is in.
    assert claimed[:3] == plain
    assert sorted(claimed[3:]) == sorted([backlog[0], backlog[1], single])


# -- the README's example ------------------------------------------------------------


def test_the_readmes_tenant_b_is_in_the_next_claim_behind_a_100000_job_backlog(dsn, conn):
    code = snippet("fair-keys", "python")
    app = pgjobs.App(dsn)

    @app.task(name="report")
    def report(i: int) -> None:
        pass

    try:
        exec(code, {"app": app, "report": report})  # noqa: S102 - the README's own code
    finally:
        app.close()
    conn.execute(
        "INSERT INTO pgjobs.workers (id, host, pid, queues, concurrency)"
        " OVERRIDING SYSTEM VALUE VALUES (1, 'h', 1, ARRAY['reports'], 2)"
    )
    claimed, _ = keyed(conn, 2, queue="reports")
    assert sorted(keys_of(conn, claimed)) == ["tenant:a", "tenant:b"]
    assert conn.execute(
        "SELECT count(*) FROM pgjobs.jobs_live WHERE key = 'tenant:a' AND status = 'queued'"
    ).fetchone() == (99_999,)
