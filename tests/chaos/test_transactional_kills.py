"""The transactional kill storm: workers SIGKILLed at random while jobs write an effect row.

Half the jobs write their effect in the job's own transaction
(`transactional=True`), half commit it on their own before the handler
returns. The same workers run both kinds, interleaved, so every kill hits
both. Each kill leaves the killed worker's jobs to the rescuer, which puts
them back in the queue: a plain job whose effect had committed runs again
and writes it twice; a transactional job's effect went with its uncommitted
transaction, so it is written exactly once, by the run that succeeded.
"""

from __future__ import annotations

import random
import signal
import time
from typing import Any

from tests.chaos.conftest import FAST, events, scalar
from tests.conftest import wait_until

#: Jobs of each kind.
JOBS = 600
KILLS = 10
SLOTS = 3
#: Seconds each handler works after writing its effect: the window a kill
#: must land in to make a plain job run twice.
WORK = 0.1


def _started(worker: Any) -> bool:
    return any(e.get("event") == "worker.started" for e in events(worker))


def _enqueue(dsn: str, start: int, count: int) -> tuple[set[str], set[str]]:
    """Enqueue `count` jobs of each kind, numbered from `start`; returns their keys."""
    from tests.chaos.app import app, effect_plain, effect_tx

    app.dsn = dsn
    numbers = range(start, start + count)
    specs = []
    for i in numbers:  # interleaved: both kinds are claimed side by side
        specs += [effect_tx.job(f"tx{i}", WORK), effect_plain.job(f"plain{i}", WORK)]
    try:
        for first in range(0, len(specs), 1000):
            app.enqueue_many(specs[first : first + 1000])
    finally:
        app.close()
    return {f"tx{i}" for i in numbers}, {f"plain{i}" for i in numbers}


def test_transactional_effects_are_exactly_once_through_a_kill_storm(cluster, workers, report):
    tx_keys, plain_keys = _enqueue(cluster.dsn, 0, JOBS)
    rng = random.Random(15)
    args = ["--concurrency", "8", *FAST]
    alive = [workers(*args) for _ in range(SLOTS)]
    kills = 0
    with cluster.connect() as conn:
        wait_until(lambda: scalar(conn, "SELECT count(*) FROM test_runs") > 50, timeout=30)
        while kills < KILLS:
            time.sleep(rng.uniform(0.2, 0.5))
            # However fast the workers are, the storm must hit a busy queue.
            if scalar(conn, "SELECT count(*) FROM pgjobs.jobs WHERE status = 'queued'") < 200:
                more_tx, more_plain = _enqueue(cluster.dsn, len(tx_keys), JOBS // 2)
                tx_keys |= more_tx
                plain_keys |= more_plain
            ready = [w for w in alive if _started(w)]
            if not ready:
                continue
            victim = rng.choice(ready)
            victim.signal(signal.SIGKILL)
            victim.wait(10)
            kills += 1
            alive[alive.index(victim)] = workers(*args)
        wait_until(
            lambda: (
                scalar(conn, "SELECT count(*) FROM pgjobs.jobs WHERE status = 'succeeded'")
                == len(tx_keys) + len(plain_keys)
            ),
            timeout=120,
            interval=0.2,
        )
        for worker in alive:
            worker.signal(signal.SIGTERM)
        assert [w.wait(30) for w in alive] == [0] * SLOTS
        statuses = dict(conn.execute("SELECT status::text, count(*) FROM pgjobs.jobs GROUP BY 1"))
        assert statuses == {"succeeded": len(tx_keys) + len(plain_keys)}, statuses
        runs = dict(conn.execute("SELECT job_key, count(*) FROM test_runs GROUP BY 1"))
        # Jobs that a kill interrupted at least once, and so ran again.
        rescued = dict(
            conn.execute(
                """
                SELECT task, count(*) FROM pgjobs.jobs
                WHERE errors @> '[{"type": "pgjobs.WorkerLost"}]'
                GROUP BY 1
                """
            )
        )
    assert set(runs) == tx_keys | plain_keys  # every job's effect is there
    tx_duplicates = sum(runs[k] - 1 for k in tx_keys)
    plain_duplicates = sum(runs[k] - 1 for k in plain_keys)
    report(
        jobs_per_kind=len(tx_keys),
        kills=kills,
        transactional_rescued=rescued.get("chaos.effect_tx", 0),
        transactional_duplicates=tx_duplicates,
        plain_rescued=rescued.get("chaos.effect_plain", 0),
        plain_duplicates=plain_duplicates,
    )
    # The kills did interrupt transactional jobs, and none of them left a second effect.
    assert rescued.get("chaos.effect_tx", 0) > 0
    assert tx_duplicates == 0, {k: runs[k] for k in tx_keys if runs[k] > 1}
    # The same storm, the same kills, without the transaction: effects twice.
    assert plain_duplicates > 0
