"""Workers SIGKILLed at random mid-drain: every job succeeds, and every duplicate is explained."""

from __future__ import annotations

import datetime as dt
import random
import re
import signal
import statistics
import time
from typing import Any

import pytest

from tests.chaos.conftest import FAST, assert_nothing_lost, enqueue_records, events, scalar
from tests.conftest import wait_until

JOBS = 4000
KILLS = 24
SLOTS = 4


def _worker_id(worker: Any) -> int | None:
    for event in events(worker):
        if event.get("event") == "worker.started":
            return int(event["worker_id"])
    return None


@pytest.mark.slow
def test_sigkill_storm_loses_nothing(cluster, workers, report):
    keys: set[str] = set()

    def feed(batch: int) -> None:
        prefix = f"b{len(keys)}-"
        enqueue_records(cluster.dsn, batch, work=0.005, prefix=prefix)
        keys.update(f"{prefix}{i}" for i in range(batch))

    feed(JOBS)
    rng = random.Random(4)
    args = ["--concurrency", "8", *FAST]
    alive = [workers(*args) for _ in range(SLOTS)]
    killed: dict[int, tuple[int | None, float]] = {}  # pid -> (worker id, when)
    began = time.monotonic()
    with cluster.connect() as conn:
        wait_until(lambda: scalar(conn, "SELECT count(*) FROM test_runs") > 100, timeout=30)
        while len(killed) < KILLS:
            time.sleep(rng.uniform(0.2, 0.6))
            # However fast the workers are, the storm must hit a busy queue.
            if scalar(conn, "SELECT count(*) FROM pgjobs.jobs WHERE status = 'queued'") < 500:
                feed(1000)
            # Kill a worker that has started work (one still importing would
            # prove nothing), and start a replacement at once.
            ready = [w for w in alive if _worker_id(w) is not None]
            if not ready:
                continue
            victim = rng.choice(ready)
            victim.signal(signal.SIGKILL)
            victim.wait(10)
            killed[victim.pid] = (_worker_id(victim), time.time())
            alive[alive.index(victim)] = workers(*args)
        wait_until(
            lambda: (
                scalar(conn, "SELECT count(*) FROM pgjobs.jobs WHERE status = 'succeeded'")
                == len(keys)
            ),
            timeout=120,
            interval=0.2,
        )
        drained = time.monotonic() - began
        # The last victims' rows go once their heartbeat is stale (2 s).
        live = {w.pid for w in alive}
        wait_until(lambda: {r[0] for r in conn.execute("SELECT pid FROM pgjobs.workers")} == live)
        for worker in alive:
            worker.signal(signal.SIGTERM)
        assert [w.wait(30) for w in alive] == [0] * SLOTS
        numbers = assert_nothing_lost(conn, keys, set(killed))
        assert scalar(conn, "SELECT count(*) FROM pgjobs.workers") == 0
        rescue_delays = _rescue_delays(conn, killed)
    # With --stale-after 2 and --rescue-interval 0.5, a dead worker's jobs are
    # back within about 2.5 s; the leader may itself have just died, so allow
    # one leader election on top.
    assert rescue_delays
    assert max(rescue_delays) < 8, rescue_delays
    report(
        **numbers,
        enqueued=len(keys),
        kills=len(killed),
        restarts=len(killed),
        lost=0,
        drain_seconds=round(drained, 1),
        rescue_after_kill_median=round(statistics.median(rescue_delays), 2),
        rescue_after_kill_max=round(max(rescue_delays), 2),
    )


def _rescue_delays(conn: Any, killed: dict[int, tuple[int | None, float]]) -> list[float]:
    """Seconds from each kill to the rescue of the killed worker's first job."""
    rows = conn.execute(
        """
        SELECT e->>'message', min((e->>'at')::timestamptz)
        FROM pgjobs.jobs, jsonb_array_elements(errors) e
        WHERE e->>'type' = 'pgjobs.WorkerLost'
        GROUP BY 1
        """
    ).fetchall()
    rescued_at: dict[int, dt.datetime] = {}
    for message, at in rows:
        match = re.search(r"worker (\d+)", message)
        if match:
            rescued_at[int(match.group(1))] = at
    return [
        rescued_at[worker_id].timestamp() - when
        for worker_id, when in killed.values()
        if worker_id in rescued_at
    ]
