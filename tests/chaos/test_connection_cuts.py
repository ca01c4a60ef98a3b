"""pg_terminate_backend on the listener, pool and leader connections, again and again."""

from __future__ import annotations

import signal
import time

import pytest

from pgjobs._names import APP_NAME_LEADER, APP_NAME_LISTENER, APP_NAME_WORKER
from tests.chaos.conftest import assert_nothing_lost, enqueue_records, scalar
from tests.chaos.test_postgres_faults import ARGS, LEADERS, LISTENERS, wake_latency
from tests.conftest import wait_until

WORKERS = 3
ROUNDS = 8
BATCH = 200
# Which backends each round cuts, by the application_name of each kind of
# worker connection ("pool" is the pool and its dedicated connections).
TARGETS = {
    "listener": f"application_name LIKE '{APP_NAME_LISTENER}%%'",
    "leader": f"application_name LIKE '{APP_NAME_LEADER}%%'",
    "pool": f"application_name LIKE '{APP_NAME_WORKER}%%'",
    "everything": "true",
}


LISTENER_PIDS = LISTENERS.replace("count(*)", "pid")
LEADER_PIDS = "SELECT pid FROM pg_locks" + LEADERS.split("FROM pg_locks", 1)[1]


def _pids(conn, sql: str) -> set[int]:
    return {row[0] for row in conn.execute(sql)}


@pytest.mark.slow
def test_terminated_connections_recover_and_wake_ups_resume(cluster, workers, report):
    pool = [workers(*ARGS) for _ in range(WORKERS)]
    keys: set[str] = set()
    recoveries: dict[str, list[float]] = {name: [] for name in TARGETS}
    latencies: list[float] = []
    with cluster.connect() as conn:
        wait_until(lambda: scalar(conn, LISTENERS) == WORKERS and scalar(conn, LEADERS) == 1)
        for index in range(ROUNDS):
            target = list(TARGETS)[index % len(TARGETS)]
            # Work in flight while the connections are cut.
            prefix = f"r{index}-"
            enqueue_records(cluster.dsn, BATCH, work=0.02, prefix=prefix)
            keys |= {f"{prefix}{i}" for i in range(BATCH)}
            wait_until(lambda: scalar(conn, "SELECT count(*) FROM test_runs") > 0)
            cut = {
                row[0]
                for row in conn.execute(
                    "SELECT pid FROM pg_stat_activity"
                    " WHERE datname = current_database() AND pid <> pg_backend_pid()"
                    f" AND backend_type = 'client backend' AND {TARGETS[target]}"
                )
            }
            conn.execute(
                "SELECT pg_terminate_backend(pid) FROM unnest(%s::int[]) AS pid", [list(cut)]
            )
            assert cut, target
            began = time.monotonic()
            # Recovered: a listener per worker and a leader, none on a cut connection.
            wait_until(
                lambda cut=cut: (
                    _pids(conn, LISTENER_PIDS).isdisjoint(cut)
                    and len(_pids(conn, LISTENER_PIDS)) == WORKERS
                    and len(_pids(conn, LEADER_PIDS) - cut) == 1
                ),
                timeout=15,
                interval=0.02,
            )
            recoveries[target].append(round(time.monotonic() - began, 3))
            wait_until(
                lambda p=prefix: (
                    scalar(
                        conn,
                        "SELECT count(*) FROM pgjobs.jobs WHERE status = 'succeeded'"
                        " AND args->>'key' LIKE %s",
                        p + "%",
                    )
                    == BATCH
                ),
                timeout=60,
                interval=0.05,
            )
            # Every worker is idle now: a new job must be started by NOTIFY,
            # well before the 2 s poll would find it.
            latency = wake_latency(cluster, f"probe{index}")
            keys.add(f"probe{index}")
            latencies.append(round(latency, 3))
    for worker in pool:
        worker.signal(signal.SIGTERM)
    assert [w.wait(30) for w in pool] == [0] * WORKERS
    with cluster.connect() as conn:
        numbers = assert_nothing_lost(conn, keys)
    assert max(latencies) < 1.0, latencies
    report(
        **numbers,
        rounds=ROUNDS,
        lost=0,
        recovery_seconds=recoveries,
        wake_latency_after_recovery=latencies,
    )
