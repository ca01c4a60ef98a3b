"""A queue's rate limit holds across worker processes, on the times the jobs table records.

The jobs' `started_at` is the claim's transaction time, the clock the rate
is kept on (migration 0013), so the counts below are exact, not sampled.
"""

from __future__ import annotations

from tests.apps.flow import SPANS, app, span
from tests.conftest import wait_until

APP = "tests.apps.flow:app"

STARTED = "SELECT count(*) FROM pgjobs.jobs WHERE queue = %s AND started_at IS NOT NULL"

#: Over the jobs of a queue started, per key (NULL: all together): how many
#: started in the first `seconds` from the key's first, the most that
#: started in any one second (a window [t, t + 1 s)), and how many workers
#: claimed them.
COUNTS = """
WITH starts AS (
    SELECT CASE WHEN %(by_key)s THEN key END AS k, started_at, worker_id
    FROM pgjobs.jobs WHERE queue = %(queue)s AND started_at IS NOT NULL
), windows AS (
    SELECT k, count(*) OVER (
        PARTITION BY k ORDER BY started_at
        RANGE BETWEEN CURRENT ROW AND interval '999999 microseconds' FOLLOWING
    ) AS n
    FROM starts
), firsts AS (
    SELECT k, min(started_at) AS first FROM starts GROUP BY k
)
SELECT s.k,
       count(*) FILTER (WHERE s.started_at < f.first + make_interval(secs => %(seconds)s)),
       (SELECT max(w.n) FROM windows AS w WHERE w.k IS NOT DISTINCT FROM s.k),
       count(DISTINCT s.worker_id)
FROM starts AS s JOIN firsts AS f ON f.k IS NOT DISTINCT FROM s.k
GROUP BY s.k
ORDER BY s.k
"""


def counts(conn, queue, seconds, *, by_key=False):
    return conn.execute(COUNTS, {"queue": queue, "seconds": seconds, "by_key": by_key}).fetchall()


def started(conn, queue):
    return conn.execute(STARTED, [queue]).fetchone()[0]


def enqueue(dsn, jobs):
    app.dsn = dsn
    try:
        app.enqueue_many(jobs)
    finally:
        app.close()


def start_three(start_worker, queue):
    # A poll interval far longer than a token's 0.2 s: the workers come back
    # for each token when it is due, or the rate would be far below 5/s.
    for _ in range(3):
        start_worker(APP, "--concurrency", "4", "--queues", queue, "--poll-interval", "5")


def test_5_per_second_across_three_workers_starts_30_jobs_in_6_seconds_and_never_6_in_one(
    dsn, conn, start_worker
):
    conn.execute(SPANS)
    enqueue(dsn, [span.options(queue="rated").job("rated", None, 0.0) for _ in range(45)])
    start_three(start_worker, "rated")
    wait_until(lambda: started(conn, "rated") >= 36, timeout=60, interval=0.2)
    ((_, in_six_seconds, busiest_second, workers),) = counts(conn, "rated", 6)
    # The default burst at 5/s is 1: at most 5 start in any second, 30 in 6 s.
    assert busiest_second == 5
    assert 27 <= in_six_seconds <= 30
    # Every worker could take the next token; more than one did.
    assert workers > 1


def test_5_per_second_per_key_holds_for_each_key_while_the_keys_run_side_by_side(
    dsn, conn, start_worker
):
    conn.execute(SPANS)
    keys = ["tenant:a", "tenant:b"]
    enqueue(
        dsn,
        [
            span.options(queue="key-rated", key=keys[i % 2]).job("key-rated", keys[i % 2], 0.0)
            for i in range(60)
        ],
    )
    start_three(start_worker, "key-rated")
    wait_until(lambda: started(conn, "key-rated") >= 48, timeout=60, interval=0.2)
    per_key = counts(conn, "key-rated", 4, by_key=True)
    assert [row[0] for row in per_key] == keys
    for _key, in_four_seconds, busiest_second, _workers in per_key:
        assert busiest_second == 5
        assert 18 <= in_four_seconds <= 20
    # Together, more than one key's rate: each key has its own bucket.
    ((_, _, busiest_second, _),) = counts(conn, "key-rated", 4)
    assert busiest_second > 5
