"""Rate limits in the database: the tokens each claim may take, the bucket's state, live changes.

The rates here are slow (per minute, per hour), so that no token comes
between two statements of a test however slow the machine: what a claim
takes follows from the state the test wrote, not from a clock.
"""

from __future__ import annotations

import asyncio
import math
from typing import Any

import psycopg
import pytest
from psycopg_pool import AsyncConnectionPool

import pgjobs
from pgjobs import _sql
from pgjobs.testing import drain
from pgjobs.worker._db import Outage
from pgjobs.worker._fetcher import Fetcher, Slots
from tests.readme import snippet, sql_statements

_START = {"after_priority": -1, "after_run_at": "0001-01-01T00:00:00Z", "after_id": 0}


@pytest.fixture
def app(dsn):
    application = pgjobs.App(dsn)
    yield application
    application.close()


@pytest.fixture
def worker_row(conn):
    conn.execute(
        "INSERT INTO pgjobs.workers (id, host, pid, queues, concurrency)"
        " OVERRIDING SYSTEM VALUE VALUES (1, 'h', 1, ARRAY['rated'], 50)"
    )


def claim(conn: psycopg.Connection[Any], limit: int = 10) -> tuple[list[int], set[float | None]]:
    """The ids claim_limited.sql claims from 'rated', and the rate_wait its rows say.

    The wait counts from the end of the statement, a few milliseconds after
    the claim's time (now()) from which the rate is kept: it is rounded up to
    a tenth of a second, which gives the whole steps the rates below make.
    """
    rows = conn.execute(
        _sql.psycopg("claim_limited"),
        {"queue": "rated", "limit": limit, "worker_id": 1, "after_turn": None, "ended": []},
    ).fetchall()
    waits = {None if row[-2] is None else math.ceil(row[-2] * 10) / 10 for row in rows}
    return [row[0] for row in rows if row[0] is not None], waits


def add_jobs(conn, n: int, queue: str = "rated") -> list[int]:
    return [
        conn.execute("SELECT pgjobs.enqueue('t', queue => %s)", [queue]).fetchone()[0]
        for _ in range(n)
    ]


def add_keyed(conn, keys: list[str | None]) -> list[int]:
    return [
        conn.execute("SELECT pgjobs.enqueue('t', queue => 'rated', key => %s)", [key]).fetchone()[0]
        for key in keys
    ]


def full_in(conn, seconds: float) -> None:
    """Put the bucket's state `seconds` from now (negative: full)."""
    conn.execute(
        "UPDATE pgjobs.queues SET rate_full_at = now() + make_interval(secs => %s)"
        " WHERE name = 'rated'",
        [seconds],
    )


@pytest.mark.usefixtures("worker_row")
def test_a_rate_limited_queue_takes_its_tokens_and_says_when_the_next_one_comes(conn):
    conn.execute("INSERT INTO pgjobs.queues (name, rate_limit) VALUES ('rated', '1/m')")
    ids = add_jobs(conn, 10)
    # The fast statements skip it, as they skip a queue with a concurrency limit.
    assert (
        conn.execute(
            _sql.psycopg("claim_one_queue"),
            {"queue": "rated", "limit": 10, "worker_id": 1, **_START},
        ).fetchall()
        == []
    )
    assert conn.execute(
        _sql.psycopg("queue_limited"), {"queues": ["rated", "other"]}
    ).fetchall() == [("rated", True)]
    # A full bucket of the default burst (1 at 1/m): one job, and the next
    # token a minute after it.
    assert claim(conn) == (ids[:1], {60.0})
    # Empty: no job, one row saying when the next token comes (under a minute).
    taken, (wait,) = claim(conn)
    assert taken == []
    assert 0 < wait <= 60
    # The state is a time: when the bucket is full again.
    assert conn.execute(
        "SELECT rate_full_at > now() FROM pgjobs.queues WHERE name = 'rated'"
    ).fetchone() == (True,)
    # A burst of 3 from a full bucket: three at once, the next token a
    # minute after the third.
    conn.execute("UPDATE pgjobs.queues SET rate_burst = 3 WHERE name = 'rated'")
    full_in(conn, -1)
    assert claim(conn) == (ids[1:4], {60.0})
    # Half a minute from full: one token spent and refilled halfway, so two.
    full_in(conn, 30)
    taken, (wait,) = claim(conn)
    assert taken == ids[4:6]
    assert 0 < wait <= 30
    # The claim asked for fewer than the tokens: no wait, the rate did not hold it back.
    full_in(conn, -1)
    assert claim(conn, limit=2) == (ids[6:8], {None})
    # Fewer jobs than tokens: the same, and an empty queue gives no row at all.
    full_in(conn, -1)
    assert claim(conn) == (ids[8:], {None})
    full_in(conn, -1)
    assert claim(conn) == ([], set())
    # 0012's function, which workers of 0012 call, keeps the rate too.
    more = add_jobs(conn, 5)
    full_in(conn, -1)
    assert conn.execute("SELECT pgjobs.claim_limited('rated', 10)").fetchone() == (more[:3],)
    assert conn.execute("SELECT pgjobs.claim_limited('rated', 10)").fetchone() == ([],)


@pytest.mark.usefixtures("worker_row")
def test_the_concurrency_limit_and_the_rate_hold_together(conn):
    conn.execute(
        "INSERT INTO pgjobs.queues (name, concurrency, rate_limit, rate_burst)"
        " VALUES ('rated', 2, '1/m', 5)"
    )
    ids = add_jobs(conn, 10)
    # The concurrency binds first: no wait for a token, the worker waits as usual.
    assert claim(conn) == (ids[:2], {None})
    assert claim(conn) == ([], set())
    conn.execute("UPDATE pgjobs.queues SET concurrency = 10 WHERE name = 'rated'")
    # Two of the five tokens are spent: three more, then the rate binds.
    taken, (wait,) = claim(conn)
    assert taken == ids[2:5]
    assert 0 < wait <= 60


@pytest.mark.usefixtures("worker_row")
def test_a_rate_changed_from_sql_holds_at_the_next_claim(conn):
    conn.execute("INSERT INTO pgjobs.queues (name, rate_limit) VALUES ('rated', '1/h')")
    ids = add_jobs(conn, 30)
    assert claim(conn) == (ids[:1], {3600.0})
    assert claim(conn)[0] == []
    # Raised: the hour-long state of the old rate counts as an empty bucket of
    # the new one, whose next token is one step (a tenth of a second) away.
    conn.execute("UPDATE pgjobs.queues SET rate_limit = '10/s' WHERE name = 'rated'")
    taken, (wait,) = claim(conn)
    assert taken == []
    assert 0 < wait <= 0.1 + 1e-6
    # Its default burst is 1 up to 10/s; at 120/s it is a tenth of a second's worth, 12.
    conn.execute("UPDATE pgjobs.queues SET rate_limit = '120/s' WHERE name = 'rated'")
    full_in(conn, -1)
    assert claim(conn, limit=50)[0] == ids[1:13]
    # Lowered: a full bucket of the new rate.
    conn.execute("UPDATE pgjobs.queues SET rate_limit = '2/h', rate_burst = 2 WHERE name = 'rated'")
    full_in(conn, -1)
    assert claim(conn) == (ids[13:15], {1800.0})
    # Cleared: the fast statement claims the queue again.
    conn.execute("UPDATE pgjobs.queues SET rate_limit = NULL, rate_burst = NULL")
    assert len(
        conn.execute(
            _sql.psycopg("claim_one_queue"),
            {"queue": "rated", "limit": 100, "worker_id": 1, **_START},
        ).fetchall()
    ) == len(ids[15:])


@pytest.mark.parametrize(
    ("column", "value", "constraint"),
    [
        ("rate_limit", "0/s", "queues_rate_limit_valid"),
        ("rate_limit", "-5/m", "queues_rate_limit_valid"),
        ("rate_limit", "10/d", "queues_rate_limit_valid"),
        ("rate_limit", "10/min", "queues_rate_limit_valid"),
        ("rate_limit", "ten/s", "queues_rate_limit_valid"),
        ("rate_limit", "10 / s", "queues_rate_limit_valid"),
        ("rate_limit", "1000000000/s", "queues_rate_limit_valid"),
        ("rate_burst", 0, "queues_rate_burst_positive"),
        ("rate_burst", -1, "queues_rate_burst_positive"),
        ("key_rate_limit", "0/h", "queues_key_rate_limit_valid"),
        ("key_rate_limit", "5/w", "queues_key_rate_limit_valid"),
        ("key_rate_burst", 0, "queues_key_rate_burst_positive"),
    ],
)
def test_an_impossible_rate_or_burst_is_refused_by_the_table(conn, column, value, constraint):
    with pytest.raises(psycopg.errors.CheckViolation, match=constraint):
        conn.execute(f"INSERT INTO pgjobs.queues (name, {column}) VALUES ('rated', %s)", [value])


def test_a_worker_writes_the_declared_rate_and_clears_one_left_out(app, conn):
    app.queue("partner-api", rate_limit="100/m", rate_burst=5, key_rate_limit="10/s")
    app.queue("exports", concurrency=2)
    conn.execute(
        "INSERT INTO pgjobs.queues (name, rate_limit, rate_burst, key_rate_limit, key_rate_burst)"
        " VALUES ('exports', '1/s', 3, '1/s', 2)"
    )
    drain(app, timeout=20, queues=("other",))
    assert conn.execute(
        "SELECT name, concurrency, rate_limit, rate_burst, key_rate_limit, key_rate_burst"
        " FROM pgjobs.queues ORDER BY name"
    ).fetchall() == [
        ("exports", 2, None, None, None, None),
        ("partner-api", None, "100/m", 5, "10/s", None),
    ]


def test_a_pass_held_back_by_the_rate_comes_back_for_the_next_token(app, conn, dsn):
    """Not at the poll interval (here 5 s): when the token is due; a token
    due after the poll interval is left to the poll."""

    @app.task(name="some", queue="rated")
    def some(n: int) -> None:
        pass

    app.enqueue_many([some.job(n) for n in range(5)])
    conn.execute("INSERT INTO pgjobs.queues (name, rate_limit) VALUES ('rated', '2/s')")
    (worker_id,) = conn.execute(
        "INSERT INTO pgjobs.workers (host, pid, queues, concurrency)"
        " VALUES ('test', 1, ARRAY['rated'], 4) RETURNING id"
    ).fetchone()

    async def run() -> list[tuple[float | None, int]]:
        dispatched: list[int] = []
        async with AsyncConnectionPool(dsn, min_size=1, open=False) as pool:
            fetcher = Fetcher(
                pool,
                worker_id,
                ("rated",),
                Slots(4),
                asyncio.Event(),
                Outage(),
                lambda job: dispatched.append(job.id),
                listen=False,
                poll_interval=5,
            )
            passes = []
            try:
                passes.append((await fetcher.run_once(), len(dispatched)))
                conn.execute(
                    "UPDATE pgjobs.queues SET rate_limit = '1/h',"
                    " rate_full_at = now() + interval '1 hour' WHERE name = 'rated'"
                )
                passes.append((await fetcher.run_once(), len(dispatched)))
            finally:
                await fetcher.close()
            return passes

    (first_pause, first), (second_pause, second) = asyncio.run(run())
    assert first == 1
    assert first_pause is not None
    assert 0 < first_pause <= 0.5
    # An empty bucket of 1/h: its next token, an hour away, is past the poll interval.
    assert (second_pause, second) == (None, 1)


def test_the_readme_sql_sets_and_clears_rates_live(conn):
    sql = snippet("rate-limit-sql", "sql")
    conn.execute(
        "INSERT INTO pgjobs.queues (name, rate_limit) VALUES ('partner-api', '100/m'),"
        " ('exports', '5/s')"
    )
    for statement in sql_statements(sql):
        conn.execute(statement)
    assert conn.execute(
        "SELECT name, rate_limit, rate_burst FROM pgjobs.queues ORDER BY name"
    ).fetchall() == [
        ("exports", None, None),
        ("imports", "10/s", None),
        ("partner-api", "50/m", 10),
    ]


@pytest.mark.usefixtures("worker_row")
def test_each_key_has_its_own_rate_and_keyless_jobs_only_the_queues(conn):
    conn.execute("INSERT INTO pgjobs.queues (name, key_rate_limit) VALUES ('rated', '1/m')")
    a1, a2, b1, b2, loose1, loose2 = add_keyed(conn, ["a", "a", "b", "b", None, None])
    # The fast statements skip the queue.
    assert (
        conn.execute(
            _sql.psycopg("claim_one_queue"),
            {"queue": "rated", "limit": 10, "worker_id": 1, **_START},
        ).fetchall()
        == []
    )
    # One token per key (the default burst), none needed without a key; the
    # next token of a key that has jobs left comes in a minute.
    assert claim(conn) == ([a1, b1, loose1, loose2], {60.0})
    assert conn.execute(
        "SELECT key, full_at > now() FROM pgjobs.queue_key_rates WHERE queue = 'rated' ORDER BY key"
    ).fetchall() == [("a", True), ("b", True)]
    taken, (wait,) = claim(conn)
    assert taken == []
    assert 0 < wait <= 60
    # Key a's bucket full again (its state past, as a minute later); a stale
    # row of another key is deleted by the claim, being a full bucket.
    conn.execute(
        "INSERT INTO pgjobs.queue_key_rates (queue, key, full_at)"
        " VALUES ('rated', 'gone', now() - interval '1 hour')"
    )
    conn.execute(
        "UPDATE pgjobs.queue_key_rates SET full_at = now() - interval '1 second' WHERE key = 'a'"
    )
    taken, (wait,) = claim(conn)
    assert taken == [a2]
    assert 0 < wait <= 60  # b's next token
    assert conn.execute(
        "SELECT key FROM pgjobs.queue_key_rates WHERE queue = 'rated' ORDER BY key"
    ).fetchall() == [("a",), ("b",)]
    # key_concurrency alongside, and a burst of 2 per key: c, running none,
    # takes one job though its rate would let it take two; a runs two.
    conn.execute("UPDATE pgjobs.queues SET key_rate_burst = 2, key_concurrency = 1")
    conn.execute("UPDATE pgjobs.queue_key_rates SET full_at = now() - interval '1 second'")
    conn.execute("DELETE FROM pgjobs.jobs_live WHERE key = 'b' AND status = 'running'")
    c1, _c2, _a3 = add_keyed(conn, ["c", "c", "a"])
    assert claim(conn) == ([b2, c1], {None})
