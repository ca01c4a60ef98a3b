"""A session holds a transaction (and the xmin horizon) open for a minute while jobs flow."""

from __future__ import annotations

import signal
import time

import pytest

from tests.chaos.conftest import FAST, assert_nothing_lost, enqueue_records, scalar
from tests.conftest import wait_until

BASELINE = 10.0
HELD = 60.0
AFTER = 10.0
REFILL = 1000


@pytest.mark.slow
def test_queue_keeps_working_while_xmin_is_held(cluster, workers, report):
    pool = [workers("--concurrency", "8", *FAST) for _ in range(2)]
    keys: set[str] = set()
    batches = 0
    samples: list[tuple[float, int]] = []
    with cluster.connect() as conn, cluster.connect() as blocker:

        def feed() -> None:
            nonlocal batches
            queued = scalar(conn, "SELECT count(*) FROM pgjobs.jobs WHERE status = 'queued'")
            if queued < REFILL:
                prefix = f"b{batches}-"
                enqueue_records(cluster.dsn, REFILL, prefix=prefix)
                keys.update(f"{prefix}{i}" for i in range(REFILL))
                batches += 1

        def run_for(seconds: float) -> None:
            end = time.monotonic() + seconds
            while time.monotonic() < end:
                feed()
                samples.append((time.monotonic(), succeeded(conn)))
                time.sleep(0.5)

        feed()
        wait_until(lambda: succeeded(conn) > 0, timeout=30)
        phase_start = time.monotonic()
        run_for(BASELINE)
        held_start = time.monotonic()
        # A transaction that has taken a snapshot and then sits idle: the
        # classic forgotten BEGIN. Vacuum cannot remove any row version
        # deleted or updated after it, so the queue's dead tuples pile up.
        blocker.autocommit = False
        blocker.execute("BEGIN ISOLATION LEVEL REPEATABLE READ")
        blocker.execute("SELECT count(*) FROM pgjobs.jobs").fetchone()
        run_for(HELD)
        dead_tuples = scalar(
            conn,
            "SELECT n_dead_tup FROM pg_stat_user_tables WHERE relid = 'pgjobs.jobs_live'::regclass",
        )
        blocker.rollback()
        held_end = time.monotonic()
        run_for(AFTER)
        wait_until(
            lambda: succeeded(conn) == len(keys), timeout=120, interval=0.2
        )  # drain what is left
        for worker in pool:
            worker.signal(signal.SIGTERM)
        assert [w.wait(30) for w in pool] == [0, 0]
        numbers = assert_nothing_lost(conn, keys)

    def rate(start: float, end: float) -> float:
        inside = [(t, n) for t, n in samples if start <= t <= end]
        (t0, n0), (t1, n1) = inside[0], inside[-1]
        return (n1 - n0) / (t1 - t0)

    baseline = rate(phase_start, held_start)
    first_10s = rate(held_start, held_start + 10)
    last_10s = rate(held_end - 10, held_end)
    after = rate(held_end, held_end + AFTER)
    # The queue keeps working: jobs completed all along the held minute.
    assert last_10s > 0
    drop = round(100 * (1 - last_10s / baseline), 1)
    print(
        f"\nxmin held {HELD:.0f}s: baseline {baseline:.0f} jobs/s, first 10 s held "
        f"{first_10s:.0f}/s, last 10 s held {last_10s:.0f}/s ({drop}% drop), "
        f"after release {after:.0f}/s; dead tuples at the end {dead_tuples}"
    )
    report(
        **numbers,
        lost=0,
        held_seconds=HELD,
        baseline_jobs_per_s=round(baseline),
        held_first_10s_jobs_per_s=round(first_10s),
        held_last_10s_jobs_per_s=round(last_10s),
        throughput_drop_percent=drop,
        after_release_jobs_per_s=round(after),
        dead_tuples_when_released=dead_tuples,
    )


def succeeded(conn) -> int:
    return int(scalar(conn, "SELECT count(*) FROM pgjobs.jobs WHERE status = 'succeeded'"))
