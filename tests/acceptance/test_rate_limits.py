"""A queue's rate limit holds across worker processes, on the times the jobs table records.

The jobs' `started_at` is the claim's transaction time, the clock the rate
is kept on (migration 0013), so the counts below are exact, not sampled.
"""

from __future__ import annotations

from tests.apps.flow import SPANS, app, span
from tests.conftest import wait_until

APP = "tests.apps.flow:app"

STARTED = "SELECT count(*) FROM pgjobs.jobs WHERE queue = 'rated' AND started_at IS NOT NULL"

#: Over the jobs started: how many started in the first 6 s from the first,
#: and the most that started in any one second (a window [t, t + 1 s)).
COUNTS = """
WITH starts AS (
    SELECT started_at FROM pgjobs.jobs WHERE queue = 'rated' AND started_at IS NOT NULL
), windows AS (
    SELECT count(*) OVER (
        ORDER BY started_at
        RANGE BETWEEN CURRENT ROW AND interval '999999 microseconds' FOLLOWING
    ) AS n
    FROM starts
)
SELECT (SELECT count(*) FROM starts
         WHERE started_at < (SELECT min(started_at) FROM starts) + interval '6 seconds'),
       (SELECT max(n) FROM windows),
       (SELECT count(DISTINCT worker_id) FROM pgjobs.jobs WHERE queue = 'rated')
"""


def test_5_per_second_across_three_workers_starts_30_jobs_in_6_seconds_and_never_6_in_one(
    dsn, conn, start_worker
):
    conn.execute(SPANS)
    app.dsn = dsn
    try:
        app.enqueue_many([span.options(queue="rated").job("rated", None, 0.0) for _ in range(45)])
    finally:
        app.close()
    # A poll interval far longer than a token's 0.2 s: the workers come back
    # for each token when it is due, or the rate would be far below 5/s.
    for _ in range(3):
        start_worker(APP, "--concurrency", "4", "--queues", "rated", "--poll-interval", "5")
    wait_until(lambda: conn.execute(STARTED).fetchone()[0] >= 36, timeout=60, interval=0.2)
    in_six_seconds, busiest_second, workers = conn.execute(COUNTS).fetchone()
    # The default burst at 5/s is 1: at most 5 start in any second, 30 in 6 s.
    assert busiest_second == 5
    assert 27 <= in_six_seconds <= 30
    # Every worker could take the next token; more than one did.
    assert workers > 1
