"""options(timeout=...): a job's own timeout, stored by each enqueue path, used by the worker."""

from __future__ import annotations

import asyncio

import pytest

import pgjobs
from pgjobs.errors import ConfigurationError
from pgjobs.testing import drain


@pytest.fixture
def app(dsn):
    application = pgjobs.App(dsn)
    yield application
    application.close()


def timeouts(conn) -> dict[int, float | None]:
    return dict(conn.execute("SELECT id, timeout FROM pgjobs.jobs ORDER BY id").fetchall())


def test_every_enqueue_path_stores_the_calls_timeout(app, conn):
    @app.task(name="t")
    def t(i: int) -> None:
        pass

    single = t.options(timeout=1.5).enqueue(1)
    plain = t.enqueue(2)
    fingerprinted = t.options(timeout=2.5, fingerprint="fp").enqueue(3)
    copied = app.enqueue_many([t.options(timeout=3.5).job(4), t.job(5)])
    with app.connection() as c:
        by_sql = c.execute("SELECT pgjobs.enqueue('t', '{\"i\": 6}', timeout => 4.5)").fetchone()[0]
    assert timeouts(conn) == {
        single: 1.5,
        plain: None,
        fingerprinted: 2.5,
        copied[0]: 3.5,
        copied[1]: None,
        by_sql: 4.5,
    }


def test_the_calls_timeout_wins_over_the_tasks(app, conn):
    @app.task(name="slow", max_attempts=1, timeout=60)
    async def slow() -> None:
        await asyncio.sleep(30)

    job_id = slow.options(timeout=0.2).enqueue()
    drain(app, timeout=20)
    status, errors = conn.execute(
        "SELECT status::text, errors FROM pgjobs.jobs WHERE id = %s", (job_id,)
    ).fetchone()
    assert status == "failed"
    assert errors[-1]["type"] == "pgjobs.errors.TaskTimeoutError"
    assert "timeout of 0.2s" in errors[-1]["message"]


@pytest.mark.parametrize("bad", [0, -1, float("nan"), True, "5"])
def test_a_bad_timeout_is_refused_before_anything_is_written(app, conn, bad):
    @app.task(name="t")
    def t() -> None:
        pass

    with pytest.raises(ConfigurationError, match="timeout must be a positive number of seconds"):
        t.options(timeout=bad).enqueue()
    assert timeouts(conn) == {}
