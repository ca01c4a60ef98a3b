"""Cron exactly once across leader failovers: real worker subprocesses, SIGKILLed leaders.

The worker subprocesses load the App defined at the top of this module.
"""

from __future__ import annotations

import datetime as dt
import json
import signal
import subprocess
import sys
import time
from typing import Any

import psycopg
import pytest

import pgjobs
from pgjobs._names import (
    APP_NAME_LEADER,
    LEADER_LOCK_CLASSID,
    LEADER_LOCK_OBJID,
    pid_from_application_name,
)
from tests.conftest import REPO, wait_until

app = pgjobs.App()


@app.task(name="cron_noop")
def cron_noop() -> None:
    """The job each tick enqueues."""


app.schedule("every-second", "* * * * * *", cron_noop)
app.schedule("every-second-backfilled", "* * * * * *", cron_noop, backfill="1m")

APP = "tests.acceptance.test_cron_failover:app"
SECOND = dt.timedelta(seconds=1)
Conn = psycopg.Connection[tuple[Any, ...]]

LEADER_SQL = (
    "SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid"
    " WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1"
    " AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())"
    " AND l.classid::bigint = %s AND l.objid::bigint = %s"
)


def leader_pid(conn: Conn) -> int | None:
    """The OS pid of the worker that holds the leader lock (from its application_name)."""
    row = conn.execute(LEADER_SQL, (LEADER_LOCK_CLASSID, LEADER_LOCK_OBJID)).fetchone()
    return pid_from_application_name(row[0], APP_NAME_LEADER) if row else None


def db_now(conn: Conn) -> dt.datetime:
    row = conn.execute("SELECT now()").fetchone()
    assert row is not None
    return row[0]  # type: ignore[no-any-return]


def per_tick(conn: Conn, schedule: str) -> dict[dt.datetime, int]:
    rows = conn.execute(
        "SELECT run_at, count(*) FROM pgjobs.jobs WHERE meta->'cron'->>'schedule' = %s"
        " GROUP BY run_at",
        (schedule,),
    ).fetchall()
    return {run_at: int(count) for run_at, count in rows}


def ceil_second(value: dt.datetime) -> dt.datetime:
    floor = value.replace(microsecond=0)
    return floor if floor == value else floor + SECOND


WORKER_ARGS = ("--leader-interval", "0.5", "--cron-grace", "1", "--poll-interval", "0.2",
               "--concurrency", "4", "--grace-period", "2")  # fmt: skip


@pytest.mark.slow
def test_every_tick_fires_once_while_leaders_are_killed(
    dsn: str, conn: Conn, start_worker: Any
) -> None:
    workers = {}
    for _ in range(3):
        worker = start_worker(APP, *WORKER_ARGS)
        workers[worker.pid] = worker
    for worker in workers.values():
        worker.wait_for_output('"worker.started"')
    wait_until(lambda: leader_pid(conn) in workers, timeout=10)
    window_start = ceil_second(db_now(conn))

    gaps: list[tuple[dt.datetime, dt.datetime]] = []
    failovers: list[float] = []
    for _ in range(2):
        time.sleep(10)
        old = leader_pid(conn)
        assert old in workers
        killed_at = db_now(conn)
        started = time.monotonic()
        workers.pop(old).proc.send_signal(signal.SIGKILL)
        wait_until(lambda: leader_pid(conn) not in (None, old), timeout=10, interval=0.01)  # noqa: B023
        failovers.append(time.monotonic() - started)
        gaps.append((killed_at, db_now(conn)))
        replacement = start_worker(APP, *WORKER_ARGS)  # back to three workers
        workers[replacement.pid] = replacement
    time.sleep(14)
    window_end = db_now(conn).replace(microsecond=0) - 2 * SECOND
    for worker in workers.values():
        worker.signal(signal.SIGTERM)
    for worker in workers.values():
        assert worker.wait(30) == 0

    ticks = []
    tick = window_start
    while tick <= window_end:
        ticks.append(tick)
        tick += SECOND
    assert len(ticks) >= 30

    # No duplicate at all, in either schedule, in or out of the window.
    duplicates = conn.execute(
        "SELECT meta->'cron'->>'schedule', run_at, count(*) FROM pgjobs.jobs"
        " GROUP BY 1, 2 HAVING count(*) > 1"
    ).fetchall()
    assert duplicates == []

    # With a backfill window, every tick fired once, failovers or not.
    backfilled = per_tick(conn, "every-second-backfilled")
    assert [t for t in ticks if backfilled.get(t) != 1] == []

    # Without one, ticks may be lost, but only inside a failover gap (from the
    # kill until the new leader's first round, with the 1 s grace around it).
    plain = per_tick(conn, "every-second")
    lost = [t for t in ticks if t not in plain]
    outside = [t for t in lost if not any(k - SECOND <= t <= e + 2 * SECOND for k, e in gaps)]
    assert outside == []

    report = {
        "window_ticks": len(ticks),
        "fired_backfilled": sum(backfilled.get(t, 0) for t in ticks),
        "fired_plain": sum(plain.get(t, 0) for t in ticks),
        "lost_plain": len(lost),
        "failover_seconds": [round(f, 2) for f in failovers],
    }
    print("cron failover:", json.dumps(report))


@pytest.mark.slow
def test_two_lockless_workers_still_fire_each_tick_once(
    dsn: str, conn: Conn, start_worker: Any
) -> None:
    """Poll-only workers elect no leader: both fire cron, and the compare-and-set decides."""
    workers = [start_worker(APP, "--no-listen", *WORKER_ARGS) for _ in range(2)]
    for worker in workers:
        worker.wait_for_output('"leader.lockless"')
    start = ceil_second(db_now(conn))
    time.sleep(8)
    end = db_now(conn).replace(microsecond=0) - SECOND
    for worker in workers:
        worker.signal(signal.SIGTERM)
    for worker in workers:
        assert worker.wait(30) == 0
    for schedule in ("every-second", "every-second-backfilled"):
        fired = per_tick(conn, schedule)
        assert all(count == 1 for count in fired.values()), fired
        expected = int((end - start).total_seconds()) + 1
        assert sum(1 for t in fired if start <= t <= end) == expected
    fired_by = [w.output().count('"cron.fired"') for w in workers]
    print("lockless cron.fired per worker:", fired_by)


def test_cron_list_shows_the_schedules(dsn: str, start_worker: Any) -> None:
    worker = start_worker(APP, *WORKER_ARGS)
    worker.wait_for_output('"cron.fired"')
    worker.signal(signal.SIGTERM)
    assert worker.wait(30) == 0
    env = {"PGJOBS_DSN": dsn, "PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"}
    done = subprocess.run(
        [sys.executable, "-m", "pgjobs", "cron", "list", "--json"],
        capture_output=True, text=True, env=env, cwd=REPO, timeout=60, check=True,
    )  # fmt: skip
    listed = {s["name"]: s for s in json.loads(done.stdout)}
    assert set(listed) == {"every-second", "every-second-backfilled"}
    row = listed["every-second-backfilled"]
    assert (row["expression"], row["timezone"], row["task"]) == ("* * * * * *", "UTC", "cron_noop")
    assert row["active"] is True
    assert row["backfill"] == 60.0
    assert row["last_fired_at"] is not None
    assert row["next_fire_at"] > row["last_fired_at"]
    table = subprocess.run(
        [sys.executable, "-m", "pgjobs", "cron", "list"],
        capture_output=True, text=True, env=env, cwd=REPO, timeout=60, check=True,
    ).stdout  # fmt: skip
    assert table.splitlines()[0].split() == [
        "name", "expression", "tz", "task", "next", "fire", "last", "fire", "active"
    ]  # fmt: skip
    assert "every-second-backfilled" in table
