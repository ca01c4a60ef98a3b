"""`python -m pgjobs worker --processes N`: a supervisor and its worker children, run for real."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.acceptance.test_worker_process import run_cli
from tests.apps.basic import record, sleepy
from tests.conftest import REPO, wait_until

APP = "tests.apps.basic:app"

pytestmark = pytest.mark.slow


@pytest.fixture
def producer(dsn):
    """The test app itself, pointed at this session's database, for enqueueing."""
    app = record.app
    app.dsn = dsn
    yield app
    app.close()


def events(worker, name):
    """The JSON log lines named `name` the supervisor (or a child) printed so far."""
    lines = [json.loads(line) for line in worker.output().splitlines() if line.startswith("{")]
    return [e for e in lines if e["event"] == name]


def worker_pids(conn):
    return {pid for (pid,) in conn.execute("SELECT pid FROM pgjobs.workers").fetchall()}


def parent_of(pid):
    """The parent pid of a running process, from /proc."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    return int(stat.rsplit(")", 1)[1].split()[1])


def alive(pid):
    """Whether `pid` runs (a zombie left to a parent that never reaps it does not)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def test_two_processes_are_two_workers_and_sigterm_stops_them_all(conn, start_worker):
    supervisor = start_worker(APP, "--processes", "2")
    supervisor.wait_for_output("supervisor.started")
    children = set(events(supervisor, "supervisor.started")[0]["pids"])
    assert len(children) == 2
    assert {parent_of(pid) for pid in children} == {supervisor.pid}
    wait_until(lambda: worker_pids(conn) == children)
    # One leader among them, by the usual election.
    supervisor.wait_for_output("leader.elected")
    supervisor.signal(signal.SIGTERM)
    assert supervisor.wait() == 0
    assert conn.execute("SELECT count(*) FROM pgjobs.workers").fetchone()[0] == 0
    assert not any(alive(pid) for pid in children)
    assert len(events(supervisor, "worker.stopped")) == 2
    exits = events(supervisor, "supervisor.child_exited")
    assert sorted((e["pid"], e["code"]) for e in exits) == sorted((p, 0) for p in children)
    assert events(supervisor, "supervisor.stopped")[0]["code"] == 0


def test_a_killed_child_is_restarted_and_no_job_is_lost(conn, producer, start_worker):
    keys = [f"j{i}" for i in range(40)]
    producer.enqueue_many([sleepy.job(key, 0.3) for key in keys])
    supervisor = start_worker(
        APP,
        "--processes",
        "2",
        "--concurrency",
        "2",
        "--heartbeat-interval",
        "0.5",
        "--stale-after",
        "2",
        "--rescue-interval",
        "0.5",
        "--leader-interval",
        "0.5",
    )
    supervisor.wait_for_output("supervisor.started")
    first = set(events(supervisor, "supervisor.started")[0]["pids"])
    wait_until(
        lambda: conn.execute("SELECT count(*) FROM test_runs WHERE note = 'end'").fetchone()[0] >= 4
    )
    victim = min(first)
    os.kill(victim, signal.SIGKILL)
    supervisor.wait_for_output("supervisor.child_started")
    exited = events(supervisor, "supervisor.child_exited")[0]
    assert (exited["pid"], exited["code"], exited["signal"]) == (victim, -9, "SIGKILL")
    assert exited["restarting_in"] == 1
    # A new child registers, with a pid the supervisor started.
    wait_until(lambda: len(worker_pids(conn) - first) == 1)
    (new,) = worker_pids(conn) - first
    assert parent_of(new) == supervisor.pid
    wait_until(
        lambda: (
            conn.execute("SELECT count(*) FROM pgjobs.jobs WHERE status = 'succeeded'").fetchone()[
                0
            ]
            == len(keys)
        ),
        timeout=60,
    )
    finished = conn.execute(
        "SELECT count(DISTINCT job_key) FROM test_runs WHERE note = 'end'"
    ).fetchone()[0]
    assert finished == len(keys)
    supervisor.signal(signal.SIGTERM)
    assert supervisor.wait() == 0
    assert conn.execute("SELECT count(*) FROM pgjobs.workers").fetchone()[0] == 0


def test_a_second_signal_stops_the_children_at_once(conn, producer, start_worker):
    sleepy.enqueue("stubborn", 60.0)
    supervisor = start_worker(APP, "--processes", "2", "--grace-period", "60")
    wait_until(
        lambda: (
            conn.execute("SELECT count(*) FROM test_runs WHERE note = 'start'").fetchone()[0] == 1
        )
    )
    supervisor.signal(signal.SIGINT)
    supervisor.wait_for_output("worker.stopping")
    supervisor.signal(signal.SIGINT)
    assert supervisor.wait(timeout=20) == 1  # a child was forced: not a clean stop
    assert "supervisor.stopping_now" in supervisor.output()
    assert conn.execute("SELECT status::text, worker_id FROM pgjobs.jobs").fetchall() == [
        ("queued", None)
    ]
    assert conn.execute("SELECT count(*) FROM pgjobs.workers").fetchone()[0] == 0


@pytest.mark.parametrize("value", ["0", "-2", "257", "many"])
def test_a_bad_processes_value_exits_2_with_the_range(dsn, value):
    result = run_cli("worker", APP, "--processes", value, env_dsn=dsn)
    assert result.returncode == 2
    assert "auto or a whole number from 1 to 256" in result.stderr


def test_a_childs_configuration_error_is_not_restarted(dsn):
    result = run_cli(
        "--log-format", "json", "worker", "tests.apps.nothing_here:app", "--processes", "2",
        env_dsn=dsn,
    )  # fmt: skip
    assert result.returncode == 2
    assert "cannot import 'tests.apps.nothing_here'" in result.stderr
    assert '"supervisor.child_exited"' in result.stderr
    assert "supervisor.child_started" not in result.stderr
    assert "Traceback" not in result.stderr


def test_ctrl_c_in_a_terminal_is_one_graceful_stop(dsn, conn, tmp_path):
    # A terminal sends SIGINT to its whole foreground process group. The
    # children are not in the supervisor's group, so they get the signal once,
    # from the supervisor, and stop gracefully rather than at once.
    log = tmp_path / "supervisor.log"
    env = {**os.environ, "PGJOBS_DSN": dsn, "PYTHONPATH": str(REPO)}
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "pgjobs", "--log-format", "json", "worker", APP,
             "--processes", "2"],
            stdout=out, stderr=subprocess.STDOUT, env=env, cwd=REPO, process_group=0,
        )  # fmt: skip
    try:
        wait_until(lambda: len(worker_pids(conn)) == 2)
        os.killpg(proc.pid, signal.SIGINT)
        assert proc.wait(30) == 0
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert "supervisor.stopping_now" not in log.read_text()
    assert conn.execute("SELECT count(*) FROM pgjobs.workers").fetchone()[0] == 0


def test_children_stop_gracefully_when_the_supervisor_is_killed(conn, start_worker):
    supervisor = start_worker(APP, "--processes", "2")
    supervisor.wait_for_output("supervisor.started")
    children = set(events(supervisor, "supervisor.started")[0]["pids"])
    wait_until(lambda: worker_pids(conn) == children)
    supervisor.signal(signal.SIGKILL)
    supervisor.wait()
    # Each child got SIGTERM from the kernel when its parent died: a graceful stop.
    wait_until(lambda: not worker_pids(conn))
    wait_until(lambda: not any(alive(pid) for pid in children))
    assert len(events(supervisor, "worker.stopped")) == 2
