"""Queue limits and job keys in the database: what each claim statement takes, and where keys go."""

from __future__ import annotations

import threading
from typing import Any

import psycopg
import pytest

import pgjobs
from pgjobs import _sql
from pgjobs.errors import ConfigurationError
from pgjobs.testing import drain
from tests.conftest import wait_until
from tests.readme import snippet, sql_statements

_START = {"after_priority": -1, "after_run_at": "0001-01-01T00:00:00Z", "after_id": 0}


@pytest.fixture
def app(dsn):
    application = pgjobs.App(dsn)
    yield application
    application.close()


def claim_limited(conn: psycopg.Connection[Any], queue: str, limit: int) -> list[int]:
    rows = conn.execute(
        _sql.psycopg("claim_limited"),
        {"queue": queue, "limit": limit, "worker_id": 1, "after_turn": None, "ended": []},
    ).fetchall()
    return [row[0] for row in rows]


def add_jobs(conn, queue: str, keys: list[str | None]) -> list[int]:
    return [
        conn.execute("SELECT pgjobs.enqueue('t', queue => %s, key => %s)", [queue, key]).fetchone()[
            0
        ]
        for key in keys
    ]


@pytest.fixture
def worker_row(conn):
    conn.execute(
        "INSERT INTO pgjobs.workers (id, host, pid, queues, concurrency)"
        " OVERRIDING SYSTEM VALUE VALUES (1, 'h', 1, ARRAY['limited', 'keyed', 'open'], 50)"
    )


def test_every_enqueue_path_stores_the_key(app, conn):
    @app.task(name="t")
    def t(i: int) -> None:
        pass

    single = t.options(key="a").enqueue(1)
    plain = t.enqueue(2)
    fingerprinted = t.options(key="b", fingerprint="fp").enqueue(3)
    copied = app.enqueue_many([t.options(key="c\td").job(4), t.job(5)])
    inserted = app.enqueue_many([t.options(key="e", fingerprint="fp2").job(6)])
    with app.connection() as c:
        by_sql = c.execute("SELECT pgjobs.enqueue('t', '{\"i\": 7}', key => 'f')").fetchone()[0]
    assert dict(conn.execute("SELECT id, key FROM pgjobs.jobs").fetchall()) == {
        single: "a",
        plain: None,
        fingerprinted: "b",
        copied[0]: "c\td",
        copied[1]: None,
        inserted[0]: "e",
        by_sql: "f",
    }


def test_a_key_too_long_is_refused_by_the_client_and_by_sql(app, conn):
    @app.task(name="t")
    def t() -> None:
        pass

    with pytest.raises(ConfigurationError, match="key must be 1 to 255 characters"):
        t.options(key="k" * 256).enqueue()
    with pytest.raises(psycopg.errors.CheckViolation, match="job_key_valid"):
        conn.execute("SELECT pgjobs.enqueue('t', key => repeat('k', 256))")
    with pytest.raises(psycopg.errors.CheckViolation, match="job_key_valid"):
        conn.execute("INSERT INTO pgjobs.jobs (task, key) VALUES ('t', '')")
    assert conn.execute("SELECT count(*) FROM pgjobs.jobs").fetchone() == (0,)


def test_the_key_follows_a_job_to_the_history_and_back(app, conn):
    @app.task(name="t", queue="keys")
    def t() -> None:
        pass

    done = t.options(key="tenant:1").enqueue()
    cancelled = t.options(key="tenant:2").enqueue()
    app.cancel(cancelled)
    drain(app, timeout=20)
    assert conn.execute(
        "SELECT id, status::text, key FROM pgjobs.job_history ORDER BY id"
    ).fetchall() == [(done, "succeeded", "tenant:1"), (cancelled, "cancelled", "tenant:2")]
    assert app.get_job(done).key == "tenant:1"
    app.retry(cancelled)
    assert conn.execute("SELECT key FROM pgjobs.jobs_live").fetchall() == [("tenant:2",)]


def test_a_worker_writes_the_declared_limits_and_leaves_the_rest(app, conn):
    app.queue("exports", concurrency=5)
    app.queue("reports", key_concurrency=1)
    conn.execute(
        "INSERT INTO pgjobs.queues (name, paused, concurrency) VALUES"
        " ('exports', true, 2), ('mine', false, 7)"
    )
    drain(app, timeout=20, queues=("other",))
    assert conn.execute(
        "SELECT name, paused, concurrency, key_concurrency FROM pgjobs.queues ORDER BY name"
    ).fetchall() == [
        # The code's limits win at start; the pause, and other queues, are left alone.
        ("exports", True, 5, None),
        ("mine", False, 7, None),
        ("reports", False, None, 1),
    ]


@pytest.mark.usefixtures("worker_row")
def test_a_limited_queue_is_claimed_only_up_to_its_limit(conn):
    conn.execute("INSERT INTO pgjobs.queues (name, concurrency) VALUES ('limited', 3)")
    ids = add_jobs(conn, "limited", [None] * 10)
    # The fast statements skip it whatever the limit leaves.
    assert (
        conn.execute(
            _sql.psycopg("claim_one_queue"),
            {"queue": "limited", "limit": 10, "worker_id": 1, **_START},
        ).fetchall()
        == []
    )
    assert claim_limited(conn, "limited", 10) == ids[:3]
    assert claim_limited(conn, "limited", 10) == []
    conn.execute("DELETE FROM pgjobs.jobs_live WHERE id = %s", [ids[0]])
    assert claim_limited(conn, "limited", 10) == ids[3:4]
    # Raised from SQL: the next claim takes the room, up to its own limit.
    conn.execute("UPDATE pgjobs.queues SET concurrency = 6 WHERE name = 'limited'")
    assert claim_limited(conn, "limited", 2) == ids[4:6]
    # Paused, nothing.
    conn.execute("UPDATE pgjobs.queues SET paused = true WHERE name = 'limited'")
    assert claim_limited(conn, "limited", 10) == []


@pytest.mark.usefixtures("worker_row")
def test_key_concurrency_takes_one_job_per_key_and_leaves_keyless_jobs_to_the_queue_limit(conn):
    conn.execute("INSERT INTO pgjobs.queues (name, key_concurrency) VALUES ('keyed', 1)")
    ids = add_jobs(conn, "keyed", ["a", "a", "b", None, "b", "c", None])
    assert claim_limited(conn, "keyed", 10) == [ids[0], ids[2], ids[3], ids[5], ids[6]]
    assert claim_limited(conn, "keyed", 10) == []
    conn.execute("DELETE FROM pgjobs.jobs_live WHERE id = %s", [ids[0]])
    assert claim_limited(conn, "keyed", 10) == [ids[1]]
    # Both limits at once: two running jobs of key b are allowed, but the queue holds 5.
    conn.execute("UPDATE pgjobs.queues SET key_concurrency = 2, concurrency = 5")
    assert conn.execute(
        "SELECT count(*) FROM pgjobs.jobs_live WHERE status = 'running'"
    ).fetchone() == (5,)
    assert claim_limited(conn, "keyed", 10) == []
    conn.execute("UPDATE pgjobs.queues SET concurrency = 6")
    assert claim_limited(conn, "keyed", 10) == [ids[4]]


@pytest.mark.usefixtures("worker_row")
def test_keys_take_turns_within_a_priority_under_key_concurrency(conn):
    """A key with a backlog does not hold back a newer key's job: each key's next one goes first.

    (A claim returns its jobs in priority, run_at, id order, whichever it chose.)
    """
    conn.execute("INSERT INTO pgjobs.queues (name, key_concurrency) VALUES ('keyed', 3)")
    big = add_jobs(conn, "keyed", ["big"] * 6)
    small = add_jobs(conn, "keyed", ["small", "small"])
    loose = add_jobs(conn, "keyed", [None])
    assert claim_limited(conn, "keyed", 3) == [big[0], small[0], loose[0]]
    # "small" now runs one job and "big" one: their next jobs tie, then big's third.
    assert claim_limited(conn, "keyed", 3) == sorted([big[1], small[1], big[2]])
    # Every key is at its limit or empty.
    assert claim_limited(conn, "keyed", 3) == []
    # A more urgent job still goes first.
    urgent = conn.execute(
        "SELECT pgjobs.enqueue('t', queue => 'keyed', priority => 0, key => 'other')"
    ).fetchone()[0]
    later = add_jobs(conn, "keyed", ["third"])
    assert claim_limited(conn, "keyed", 1) == [urgent]
    assert claim_limited(conn, "keyed", 5) == later


@pytest.mark.usefixtures("worker_row")
def test_a_claim_that_waited_for_another_counts_the_jobs_that_one_claimed(dsn, conn):
    """The second claim waits for the first's commit, then sees its jobs running.

    A single statement would count the running jobs in the snapshot it took
    before waiting, and claim three more: six running under a limit of three.
    """
    conn.execute("INSERT INTO pgjobs.queues (name, concurrency) VALUES ('limited', 3)")
    add_jobs(conn, "limited", [None] * 10)
    second: list[int] = []

    def claim_second() -> None:
        with psycopg.connect(dsn, autocommit=True) as other:
            second.extend(claim_limited(other, "limited", 10))

    with psycopg.connect(dsn) as first:
        assert len(claim_limited(first, "limited", 10)) == 3  # its transaction stays open
        waiter = threading.Thread(target=claim_second)
        waiter.start()
        # The second claim waits for the queue's row, locked by the first.
        wait_until(
            lambda: (
                conn.execute(
                    "SELECT count(*) FROM pg_stat_activity"
                    " WHERE datname = current_database() AND wait_event_type = 'Lock'"
                ).fetchone()
                == (1,)
            )
        )
        first.commit()
    waiter.join(10)
    assert second == []
    assert conn.execute(
        "SELECT count(*) FROM pgjobs.jobs_live WHERE status = 'running'"
    ).fetchone() == (3,)


def test_the_readme_sql_changes_limits_live(conn):
    sql = snippet("flow-control-sql", "sql")
    conn.execute(
        "INSERT INTO pgjobs.queues (name, concurrency, key_concurrency)"
        " VALUES ('exports', 5, NULL), ('reports', 4, 1)"
    )
    for statement in sql_statements(sql):
        conn.execute(statement)
    assert conn.execute(
        "SELECT name, concurrency, key_concurrency FROM pgjobs.queues ORDER BY name"
    ).fetchall() == [("exports", 3, None), ("imports", None, 2), ("reports", None, 1)]
