"""Circuit breakers in the database: counting outcomes, holding claims, trials, and the sync."""

from __future__ import annotations

import asyncio
from typing import Any

import psycopg
import pytest
from psycopg_pool import AsyncConnectionPool

import pgjobs
from pgjobs import _sql
from pgjobs.worker._breakers import BreakerTrials, sync_breakers
from pgjobs.worker._outcome import Outcome, batch_params
from tests.readme import snippet, sql_statements

_START = {"after_priority": -1, "after_run_at": "0001-01-01T00:00:00Z", "after_id": 0}
WORKER = 1


@pytest.fixture
def worker_row(conn):
    conn.execute(
        "INSERT INTO pgjobs.workers (id, host, pid, queues, concurrency)"
        " OVERRIDING SYSTEM VALUE VALUES (1, 'h', 1, ARRAY['q', 'limited'], 50)"
    )


def enqueue(conn, task: str, n: int = 1, queue: str = "q") -> list[int]:
    return [
        conn.execute("SELECT pgjobs.enqueue(%s, queue => %s)", [task, queue]).fetchone()[0]
        for _ in range(n)
    ]


def claim(conn, limit: int = 50, queue: str = "q") -> list[tuple[int, str]]:
    rows = conn.execute(
        _sql.psycopg("claim_one_queue"),
        {"queue": queue, "limit": limit, "worker_id": WORKER, **_START},
    ).fetchall()
    return [(row[0], row[2]) for row in rows]


def claim_many(conn, limit: int = 50) -> list[int]:
    rows = conn.execute(
        _sql.psycopg("claim"),
        {
            "queues": ["q", "other"],
            "after_priorities": [-1, -1],
            "after_run_ats": ["0001-01-01T00:00:00Z"] * 2,
            "after_ids": [0, 0],
            "limit": limit,
            "worker_id": WORKER,
        },
    ).fetchall()
    return [row[0] for row in rows]


def claim_limited(conn, limit: int = 50) -> list[int]:
    rows = conn.execute(
        _sql.psycopg("claim_limited"),
        {"queue": "limited", "limit": limit, "worker_id": WORKER, "after_turn": None, "ended": []},
    ).fetchall()
    return [row[0] for row in rows if row[0] is not None]


def finish(conn, job_id: int, *, ok: bool, retry: bool = False) -> None:
    """Record one attempt's outcome through complete.sql, as the completer does."""
    attempt = conn.execute("SELECT attempts FROM pgjobs.jobs WHERE id = %s", [job_id]).fetchone()[0]
    error = None if ok else {"attempt": attempt, "type": "E", "message": "no", "traceback": None}
    status = "succeeded" if ok else ("queued" if retry else "failed")
    outcome = Outcome(job_id, attempt, status, 0.0, error, None)
    assert conn.execute(_sql.psycopg("complete"), batch_params(WORKER, [outcome])).fetchall()


def breaker(conn, task: str = "flaky") -> dict[str, Any]:
    with conn.cursor(row_factory=psycopg.rows.dict_row) as cur:
        row = cur.execute("SELECT * FROM pgjobs.task_breakers WHERE task = %s", [task]).fetchone()
    assert row is not None
    return row


def add_breaker(conn, task: str = "flaky", failures: int = 3, cooldown: float = 60) -> None:
    conn.execute(
        "INSERT INTO pgjobs.task_breakers (task, failures, cooldown) VALUES (%s, %s, %s)",
        [task, failures, cooldown],
    )


def cooldown_over(conn, task: str = "flaky") -> None:
    conn.execute(
        "UPDATE pgjobs.task_breakers SET retry_at = now() - interval '1 second' WHERE task = %s",
        [task],
    )


def trial(conn) -> list[tuple[str, int, str]]:
    return conn.execute(_sql.psycopg("breakers_trial")).fetchall()


@pytest.mark.usefixtures("worker_row")
def test_consecutive_failures_open_the_breaker_and_a_success_resets_the_count(conn):
    add_breaker(conn, failures=3)
    flaky = enqueue(conn, "flaky", 6)
    assert [task for _, task in claim(conn, 3)] == ["flaky"] * 3
    finish(conn, flaky[0], ok=False)
    finish(conn, flaky[1], ok=False)
    assert breaker(conn)["consecutive_failures"] == 2
    finish(conn, flaky[2], ok=True)
    assert (breaker(conn)["state"], breaker(conn)["consecutive_failures"]) == ("closed", 0)
    # A failed attempt that is retried counts as much as a last one.
    claimed = [job for job, _ in claim(conn, 3)]
    finish(conn, claimed[0], ok=False, retry=True)
    finish(conn, claimed[1], ok=False)
    finish(conn, claimed[2], ok=False)
    state = breaker(conn)
    assert (state["state"], state["consecutive_failures"]) == ("open", 3)
    assert state["retry_at"] > state["opened_at"]


@pytest.mark.usefixtures("worker_row")
def test_an_open_breaker_holds_its_tasks_jobs_in_every_claim_but_not_other_tasks(conn):
    add_breaker(conn, failures=1)
    conn.execute("INSERT INTO pgjobs.queues (name, concurrency) VALUES ('limited', 10)")
    first = enqueue(conn, "flaky")[0]
    assert claim(conn, 1) == [(first, "flaky")]
    finish(conn, first, ok=False)
    assert breaker(conn)["state"] == "open"
    held = enqueue(conn, "flaky", 2) + enqueue(conn, "flaky", 2, queue="other")
    held += enqueue(conn, "flaky", 2, queue="limited")
    steady = enqueue(conn, "steady", 2)
    other = enqueue(conn, "steady", 1, queue="other")
    limited = enqueue(conn, "steady", 1, queue="limited")
    assert [job for job, _ in claim(conn)] == steady
    assert claim_many(conn) == other
    assert claim_limited(conn) == limited
    assert conn.execute(
        "SELECT count(*) FROM pgjobs.jobs WHERE id = ANY (%s) AND status = 'queued'", [held]
    ).fetchone() == (len(held),)


@pytest.mark.usefixtures("worker_row")
def test_after_the_cooldown_one_trial_runs_and_its_success_closes_the_breaker(conn):
    add_breaker(conn, failures=1)
    first = enqueue(conn, "flaky")[0]
    claim(conn, 1)
    finish(conn, first, ok=False)
    rest = enqueue(conn, "flaky", 3)
    # Before the cooldown ends, no trial.
    assert trial(conn) == []
    cooldown_over(conn)
    [(task, trial_id, queue)] = trial(conn)
    assert (task, queue) == ("flaky", "q")
    assert trial_id in rest
    assert (breaker(conn)["state"], breaker(conn)["trial_job_id"]) == ("half_open", trial_id)
    # The trial alone is claimed; a second pass names no other.
    assert claim(conn) == [(trial_id, "flaky")]
    assert claim(conn) == []
    assert trial(conn) == []
    finish(conn, trial_id, ok=True)
    state = breaker(conn)
    assert (state["state"], state["consecutive_failures"], state["trial_job_id"]) == (
        "closed",
        0,
        None,
    )
    assert sorted(job for job, _ in claim(conn)) == sorted(set(rest) - {trial_id})


@pytest.mark.usefixtures("worker_row")
def test_a_failed_trial_opens_the_breaker_again_and_other_outcomes_change_nothing(conn):
    add_breaker(conn, failures=2)
    jobs = enqueue(conn, "flaky", 3)
    claim(conn, 3)
    finish(conn, jobs[0], ok=False)
    finish(conn, jobs[1], ok=False)
    opened = breaker(conn)
    assert opened["state"] == "open"
    # A job that was already running when it opened: its success closes nothing.
    finish(conn, jobs[2], ok=True)
    assert breaker(conn)["state"] == "open"
    waiting = enqueue(conn, "flaky", 2)
    cooldown_over(conn)
    [(_, trial_id, _)] = trial(conn)
    assert claim(conn) == [(trial_id, "flaky")]
    finish(conn, trial_id, ok=False)
    again = breaker(conn)
    assert (again["state"], again["trial_job_id"]) == ("open", None)
    assert again["opened_at"] > opened["opened_at"]
    assert again["retry_at"] > again["opened_at"]
    assert claim(conn) == []
    assert conn.execute(
        "SELECT count(*) FROM pgjobs.jobs WHERE id = ANY (%s) AND status = 'queued'",
        [[j for j in waiting if j != trial_id]],
    ).fetchone() == (1,)


@pytest.mark.usefixtures("worker_row")
def test_a_trial_cancelled_before_it_ran_is_replaced(conn):
    add_breaker(conn, failures=1)
    first = enqueue(conn, "flaky")[0]
    claim(conn, 1)
    finish(conn, first, ok=False)
    waiting = enqueue(conn, "flaky", 2)
    cooldown_over(conn)
    [(_, trial_id, _)] = trial(conn)
    conn.execute("SELECT pgjobs.cancel(%s)", [trial_id])
    [(_, second, _)] = trial(conn)
    assert second in waiting
    assert second != trial_id
    assert breaker(conn)["trial_job_id"] == second
    # No job left to try: open (its cooldown over) until one comes.
    conn.execute("SELECT pgjobs.cancel(%s)", [second])
    assert trial(conn) == []
    assert (breaker(conn)["state"], breaker(conn)["trial_job_id"]) == ("open", None)
    third = enqueue(conn, "flaky")[0]
    assert [row[1] for row in trial(conn)] == [third]


@pytest.mark.usefixtures("worker_row")
def test_a_transactional_success_and_a_lost_attempt_count_too(conn):
    add_breaker(conn, failures=2)
    jobs = enqueue(conn, "flaky", 2)
    claim(conn, 2)
    # The worker died: the rescuer's lost attempts are failed attempts.
    conn.execute("DELETE FROM pgjobs.workers")
    conn.execute(
        _sql.psycopg("rescue"),
        {
            "stale_after": 30.0,
            "grace": 1.0,
            "settle": 3.0,
            "classid": 0,
            "suspects": [],
            "suspected_at": [],
        },
    )
    assert breaker(conn)["state"] == "open"
    conn.execute(
        "INSERT INTO pgjobs.workers (id, host, pid, queues, concurrency)"
        " OVERRIDING SYSTEM VALUE VALUES (1, 'h', 1, ARRAY['q'], 50)"
    )
    cooldown_over(conn)
    [(_, trial_id, _)] = trial(conn)
    assert trial_id in jobs
    [(claimed, _)] = claim(conn)
    attempt = conn.execute("SELECT attempts FROM pgjobs.jobs WHERE id = %s", [claimed]).fetchone()
    # complete_one.sql: a transactional handler's success closes it as well.
    assert conn.execute(
        _sql.psycopg("complete_one"),
        {"id": claimed, "attempt": attempt[0], "worker_id": WORKER, "result": None, "keep": True},
    ).fetchall() == [(claimed,)]
    assert breaker(conn)["state"] == "closed"


def test_limits_in_sql_are_checked(conn):
    for bad in (
        "(task, failures, cooldown) VALUES ('t', 0, 1)",
        "(task, failures, cooldown) VALUES ('t', 1, 0)",
        "(task, failures, cooldown, state) VALUES ('t', 1, 1, 'ajar')",
    ):
        with pytest.raises(psycopg.errors.CheckViolation):
            conn.execute(f"INSERT INTO pgjobs.task_breakers {bad}")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"failures": 0}, "failures must be a positive integer"),
        ({"failures": -1}, "failures must be a positive integer"),
        ({"failures": 2.5}, "failures must be a positive integer"),
        ({"failures": True}, "failures must be a positive integer"),
        ({"cooldown": 0}, "cooldown must be a positive number of seconds"),
        ({"cooldown": -5}, "cooldown must be a positive number of seconds"),
        ({"cooldown": float("inf")}, "cooldown must be a positive number of seconds"),
        ({"cooldown": "60"}, "cooldown must be a positive number of seconds"),
    ],
)
def test_bad_breakers_are_refused_at_declaration(kwargs, message):
    with pytest.raises(pgjobs.errors.ConfigurationError, match=message):
        pgjobs.CircuitBreaker(**kwargs)


def test_a_breaker_is_a_circuit_breaker_and_not_on_a_pattern_task():
    app = pgjobs.App()
    with pytest.raises(pgjobs.errors.ConfigurationError, match=r"must be a pgjobs\.CircuitBreaker"):
        app.task(name="a", circuit_breaker=5)(lambda: None)  # type: ignore[call-overload]
    with pytest.raises(pgjobs.errors.ConfigurationError, match="pattern task"):
        app.task(name="r.*", circuit_breaker=pgjobs.CircuitBreaker())(lambda: None)
    assert app.tasks == {}


def test_workers_write_the_apps_breakers_and_drop_the_ones_removed(dsn, conn):
    app = pgjobs.App(dsn)

    @app.task(name="flaky", circuit_breaker=pgjobs.CircuitBreaker(failures=4, cooldown=30))
    def flaky() -> None:
        pass

    @app.task(name="plain")
    def plain() -> None:
        pass

    add_breaker(conn, "plain", 1, 1)
    add_breaker(conn, "elsewhere", 1, 1)
    conn.execute(
        "INSERT INTO pgjobs.task_breakers (task, failures, cooldown, state)"
        " VALUES ('flaky', 1, 1, 'open')"
    )

    async def sync() -> list[str]:
        async with AsyncConnectionPool(dsn, open=False) as pool:
            changed = await sync_breakers(pool, app)
            again = await sync_breakers(pool, app)
            assert again == []
            # The leader's duty runs on the same pool; nothing is due.
            await BreakerTrials(pool).run_once()
            return changed

    assert sorted(asyncio.run(sync())) == ["flaky", "plain"]
    assert conn.execute(
        "SELECT task, failures, cooldown, state FROM pgjobs.task_breakers ORDER BY task"
    ).fetchall() == [("elsewhere", 1, 1.0, "closed"), ("flaky", 4, 30.0, "open")]
    app.close()


def test_the_readme_sql_reads_and_closes_a_breaker(conn):
    conn.execute(
        "INSERT INTO pgjobs.task_breakers (task, failures, cooldown, state, consecutive_failures,"
        " retry_at) VALUES ('shop.call_partner', 5, 60, 'open', 5, now() + interval '1 minute')"
    )
    statements = sql_statements(snippet("breakers-sql", "sql"))
    assert conn.execute(statements[0]).fetchall()[0][:3] == ("shop.call_partner", "open", 5)
    for statement in statements[1:]:
        conn.execute(statement)
    assert breaker(conn, "shop.call_partner")["state"] == "closed"
    # Closed, its jobs are claimed again.
    conn.execute(
        "INSERT INTO pgjobs.workers (id, host, pid, queues, concurrency)"
        " OVERRIDING SYSTEM VALUE VALUES (1, 'h', 1, ARRAY['q'], 50)"
    )
    job = enqueue(conn, "shop.call_partner")[0]
    assert claim(conn) == [(job, "shop.call_partner")]


def test_the_leaders_duty_logs_breakers_that_open_and_close(dsn, conn):
    from structlog.testing import capture_logs

    add_breaker(conn, failures=1)
    duty_logs: list[list[dict[str, Any]]] = []

    async def passes() -> None:
        async with AsyncConnectionPool(dsn, open=False) as pool:
            duty = BreakerTrials(pool)
            for change in (
                "SELECT 1",
                "UPDATE pgjobs.task_breakers SET state = 'open', consecutive_failures = 1,"
                " retry_at = now() + interval '1 minute'",
                "SELECT 1",
                "UPDATE pgjobs.task_breakers SET state = 'closed', consecutive_failures = 0",
            ):
                conn.execute(change)
                with capture_logs() as logs:
                    await duty.run_once()
                duty_logs.append([e for e in logs if e["event"].startswith("breaker.")])

    asyncio.run(passes())
    events = [[(e["event"], e["task"]) for e in logs] for logs in duty_logs]
    assert events == [[], [("breaker.opened", "flaky")], [], [("breaker.closed", "flaky")]]
    assert duty_logs[1][0]["failures"] == 1
