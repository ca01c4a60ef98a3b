"""Seconds from a worker's SIGKILL to its running jobs back in the queue, with default settings.

Not a test (it prints numbers; nothing here fails on speed). One kill at a
time, on a scratch database it creates and drops:

    python -m tests.acceptance.rescue_after_kill [--kills 20] [--leader] [--dsn SERVER]

Without --leader, a worker serving another queue leads, and each round
starts a fresh worker, lets it take two long jobs, and kills it. With
--leader, three workers each run two long jobs and the leader is the one
killed (a replacement starts after each kill), so the time includes the
election of the next leader.
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

import psycopg
from psycopg.conninfo import make_conninfo

from tests.conftest import REPO

DATABASE = "pgjobs_rescue_after_kill"
APP = "tests.apps.basic:app"
LEADER = """
    SELECT a.application_name FROM pg_stat_activity AS a
    JOIN pg_locks AS l ON l.pid = a.pid
    WHERE a.datname = current_database() AND l.locktype = 'advisory'
      AND l.objsubid = 1 AND l.granted
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dsn", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument("--leader", action="store_true", help="kill the leader each time")
    args = parser.parse_args()
    dsn = make_conninfo(args.dsn, dbname=DATABASE)
    with psycopg.connect(args.dsn, autocommit=True) as admin:
        admin.execute(f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)")
        admin.execute(f"CREATE DATABASE {DATABASE}")
    env = {**os.environ, "PGJOBS_DSN": dsn, "PYTHONPATH": str(REPO)}
    subprocess.run(
        [sys.executable, "-m", "pgjobs", "migrate"], env=env, check=True, capture_output=True
    )
    workers: dict[int, subprocess.Popen[bytes]] = {}

    def start(*options: str) -> subprocess.Popen[bytes]:
        command = [sys.executable, "-m", "pgjobs", "--log-level", "error", "worker", APP]
        process = subprocess.Popen([*command, *options], env=env, cwd=REPO)
        workers[process.pid] = process
        return process

    try:
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(
                "CREATE TABLE test_runs (id bigserial PRIMARY KEY, job_key text NOT NULL,"
                " pid integer NOT NULL, note text NOT NULL DEFAULT '', at timestamptz)"
            )
            rounds = _leader_kills if args.leader else _worker_kills
            delays = rounds(conn, start, workers, args.kills)
        delays.sort()
        p99 = delays[min(len(delays) - 1, int(0.99 * len(delays)))]
        print(
            f"{'leader' if args.leader else 'worker'} kills: {len(delays)},"
            f" p50 {statistics.median(delays):.3f} s, p99 {p99:.3f} s, max {max(delays):.3f} s"
        )
    finally:
        for process in workers.values():
            process.kill()
            process.wait()
        with psycopg.connect(args.dsn, autocommit=True) as admin:
            admin.execute(f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)")


def _scalar(conn: psycopg.Connection[Any], sql: str, *params: object) -> Any:
    row = conn.execute(sql, params).fetchone()
    return row[0] if row else None


def _until(predicate: Callable[[], bool], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise SystemExit("timed out")
        time.sleep(0.005)


def _enqueue(conn: psycopg.Connection[Any], count: int) -> None:
    conn.execute(
        "INSERT INTO pgjobs.jobs (task, args, max_attempts) SELECT 'sleepy',"
        " jsonb_build_object('key', 'k' || g, 'seconds', 3000), 1000"
        " FROM generate_series(1, %s) AS g",
        (count,),
    )


def _in(conn: psycopg.Connection[Any], status: str) -> int:
    return int(_scalar(conn, "SELECT count(*) FROM pgjobs.jobs WHERE status = %s", status))


def _worker_kills(
    conn: psycopg.Connection[Any], start: Any, workers: dict[int, Any], kills: int
) -> list[float]:
    start("--queues", "elsewhere")  # the leader; it never takes the jobs
    _until(lambda: _scalar(conn, LEADER) is not None)
    time.sleep(4)  # past the rescuer's settling after the first connections
    delays = []
    for _ in range(kills):
        conn.execute("DELETE FROM pgjobs.jobs")
        _enqueue(conn, 2)
        victim = start("--concurrency", "2")
        _until(lambda: _in(conn, "running") == 2)
        began = time.monotonic()
        victim.send_signal(signal.SIGKILL)
        victim.wait()
        _until(lambda: _in(conn, "queued") == 2)
        delays.append(time.monotonic() - began)
        workers.pop(victim.pid)
        print(f"worker killed, jobs back in {delays[-1]:.3f} s", flush=True)
    return delays


def _leader_kills(
    conn: psycopg.Connection[Any], start: Any, workers: dict[int, Any], kills: int
) -> list[float]:
    for _ in range(3):
        start("--concurrency", "2")
    _enqueue(conn, 6)
    delays = []
    for _ in range(kills):
        _until(lambda: _in(conn, "running") == 6)
        time.sleep(4)  # past the settling of the replacement's connections
        name = str(_scalar(conn, LEADER))
        pid = int(re.search(r"pid=(\d+)", name).group(1))  # type: ignore[union-attr]
        worker_id = _scalar(conn, "SELECT id FROM pgjobs.workers WHERE pid = %s", pid)
        held = _scalar(
            conn,
            "SELECT count(*) FROM pgjobs.jobs WHERE status = 'running' AND worker_id = %s",
            worker_id,
        )
        began = time.monotonic()
        victim = workers.pop(pid)
        victim.send_signal(signal.SIGKILL)
        victim.wait()
        _until(lambda held=held: _in(conn, "queued") == held)
        delays.append(time.monotonic() - began)
        print(f"leader killed, its {held} jobs back in {delays[-1]:.3f} s", flush=True)
        start("--concurrency", "2")
    return delays


if __name__ == "__main__":
    main()
