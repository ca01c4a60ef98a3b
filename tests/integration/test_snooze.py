"""pgjobs.Snooze on a real PostgreSQL: back in line, the attempt not counted, the snooze counted."""

from __future__ import annotations

import pytest

import pgjobs
from pgjobs.testing import drain


@pytest.fixture
def app(dsn):
    application = pgjobs.App(dsn)
    yield application
    application.close()


def test_a_job_that_snoozes_twice_then_succeeds_used_one_attempt(app, conn):
    runs: list[int] = []

    @app.task(name="poll", max_attempts=1)
    def poll() -> str:
        runs.append(pgjobs.current_job().attempt)
        if len(runs) < 3:
            raise pgjobs.Snooze(0)
        return "ready"

    job_id = poll.enqueue()
    drain(app)
    assert runs == [1, 1, 1]
    assert conn.execute(
        "SELECT status::text, attempts, snoozes, result FROM pgjobs.jobs WHERE id = %s", (job_id,)
    ).fetchone() == ("succeeded", 1, 2, "ready")
    assert app.get_job(job_id).snoozes == 2


def test_a_snooze_moves_run_at_and_leaves_the_job_queued(app, conn):
    @app.task(name="later")
    async def later() -> None:
        raise pgjobs.Snooze(600)

    job_id = later.enqueue()
    drain(app)
    row = conn.execute(
        "SELECT status::text, attempts, snoozes, run_at > now() + interval '9 minutes',"
        " errors FROM pgjobs.jobs WHERE id = %s",
        (job_id,),
    ).fetchone()
    assert row == ("queued", 0, 1, True, [])


def test_the_cap_fails_the_job_and_the_history_keeps_the_count(app, conn):
    @app.task(name="stuck", max_attempts=1, max_snoozes=2)
    def stuck() -> None:
        raise pgjobs.Snooze(0)

    job_id = stuck.enqueue()
    drain(app)
    row = conn.execute(
        "SELECT status::text, attempts, snoozes, errors -> -1 ->> 'message'"
        " FROM pgjobs.job_history WHERE id = %s",
        (job_id,),
    ).fetchone()
    assert row[:3] == ("failed", 1, 2)
    assert "snoozed 2 times" in row[3]
