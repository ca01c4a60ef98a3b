"""Finished jobs move to the history with their id; a task with keep_history=False keeps none."""

from __future__ import annotations

import pytest

import pgjobs
from pgjobs.testing import drain


@pytest.fixture
def app(dsn):
    application = pgjobs.App(dsn)
    yield application
    application.close()


def test_finished_jobs_move_to_the_history_unless_their_task_keeps_none(app, conn):
    @app.task(name="kept", max_attempts=1)
    def kept(fail: bool) -> str:
        if fail:
            raise ValueError("boom")
        return "done"

    @app.task(name="forgotten", max_attempts=1, keep_history=False)
    def forgotten(fail: bool) -> None:
        if fail:
            raise ValueError("boom")

    ids = [kept.enqueue(fail=False), kept.enqueue(fail=True)]
    gone = [forgotten.enqueue(fail=False), forgotten.enqueue(fail=True)]
    drain(app)

    assert conn.execute("SELECT count(*) FROM pgjobs.jobs_live").fetchone() == (0,)
    history = conn.execute(
        "SELECT id, status::text, result, worker_id IS NOT NULL FROM pgjobs.job_history ORDER BY id"
    ).fetchall()
    assert history == [(ids[0], "succeeded", "done", True), (ids[1], "failed", None, True)]
    # The view sees them where they are; the forgotten ones are nowhere.
    assert conn.execute(
        "SELECT count(*) FROM pgjobs.jobs WHERE id = ANY(%s)", [ids + gone]
    ).fetchone() == (2,)
