"""The doctor's judgements, from measured values to verdicts, without a database."""

from __future__ import annotations

import re

import pytest

from pgjobs import _doctor, _migrate, _sql
from pgjobs._doctor import (
    DueQueue,
    Failures,
    Finding,
    IdleSession,
    Relation,
    RunningJob,
    Server,
    WorkerRow,
    XminHolder,
)
from pgjobs._names import APP_NAME_LISTENER, with_pid
from pgjobs._window import Schema
from pgjobs.cli._doctor import render
from tests.conftest import REPO

SERVER = Server(
    notify_usage=0.0,
    max_connections=100,
    reserved_connections=3,
    server_port=5432,
    client_port=5432,
    autovacuum=True,
    jobs_reloptions=[f"{k}={v}" for k, v in _doctor.JOBS_RELOPTIONS.items()],
)


def _session(seconds: float, pid: int = 10) -> XminHolder:
    return XminHolder("session", pid, "psql", seconds, 5, "idle in transaction", "SELECT 1")


def _worker(queues: list[str], silent: float = 1.0, awaiting: bool = False) -> WorkerRow:
    return WorkerRow(1, "h", 42, queues, awaiting, silent, listener_seen=False)


def _table(live: int, dead: int, bytes_: int = 8192, width: float | None = 100) -> Relation:
    return Relation("jobs", False, "jobs", bytes_, 8192, live, dead, live, width)


@pytest.mark.parametrize(
    ("verdicts", "code"),
    [([], 0), (["ok", "ok"], 0), (["ok", "warn"], 1), (["warn", "fail", "ok"], 2)],
)
def test_the_exit_code_is_the_worst_verdict(verdicts, code):
    assert _doctor.exit_code([Finding("c", v, None, "") for v in verdicts]) == code


@pytest.mark.parametrize(
    ("seconds", "verdict"),
    [
        (0.0, "ok"),
        (_doctor.XMIN_WARN_SECONDS, "warn"),
        (_doctor.XMIN_FAIL_SECONDS, "fail"),
    ],
)
def test_xmin_is_judged_by_the_oldest_transaction(seconds, verdict):
    (finding,) = _doctor.check_xmin([_session(1.0, pid=1), _session(seconds, pid=2)])
    assert finding.verdict == verdict
    if verdict != "ok":
        assert "pid 2 (psql)" in finding.detail
        assert "pg_terminate_backend(2)" in finding.fix


def test_xmin_without_holders_is_ok():
    (finding,) = _doctor.check_xmin([])
    assert finding.verdict == "ok"


def test_replication_slots_and_prepared_transactions_hold_xmin_too():
    slot = XminHolder(
        "replication slot", None, "standby1", None, _doctor.XMIN_WARN_XIDS, "inactive", None
    )
    (finding,) = _doctor.check_xmin([_session(1.0), slot])
    assert finding.verdict == "warn"
    assert "standby1" in finding.fix
    prepared = XminHolder(
        "prepared transaction", None, "tx1", _doctor.XMIN_FAIL_SECONDS, 3, None, None
    )
    (finding,) = _doctor.check_xmin([prepared])
    assert finding.verdict == "fail"
    assert "ROLLBACK PREPARED 'tx1'" in finding.fix


def test_idle_in_transaction_counts_sessions_and_names_the_oldest():
    assert _doctor.check_idle([]).verdict == "ok"
    sessions = [IdleSession(1, "a", 2.0, "x"), IdleSession(2, "b", _doctor.IDLE_WARN_SECONDS, "y")]
    finding = _doctor.check_idle(sessions)
    assert (finding.verdict, finding.value) == ("warn", 2)
    assert "pid 2 (b)" in finding.detail
    long = [IdleSession(3, "c", _doctor.IDLE_FAIL_SECONDS, None)]
    assert _doctor.check_idle(long).verdict == "fail"


@pytest.mark.parametrize(
    ("live", "dead", "verdict"),
    [
        (0, 0, "ok"),
        (100, 900, "ok"),  # too few dead rows to matter
        (80_000, 20_000, "warn"),
        (10_000, 10_000, "fail"),
        (1_000_000, 10_000, "ok"),
    ],
)
def test_dead_rows_against_live_rows(live, dead, verdict):
    (finding,) = _doctor.check_dead_rows([_table(live, dead)])
    assert finding.verdict == verdict
    assert bool(finding.fix) == (verdict != "ok")


def test_bloat_is_estimated_from_the_rows_width():
    # 10,000 rows of 100 + 28 bytes fill 157 pages of 8 kB.
    assert _doctor.needed_bytes(_table(10_000, 0)) == 157 * 8192
    assert _doctor.needed_bytes(_table(10_000, 0, width=None)) is None
    (ok,) = _doctor.check_bloat([_table(10_000, 0, bytes_=200 * 8192)])
    assert ok.verdict == "ok"
    (bloated,) = _doctor.check_bloat([_table(10_000, 0, bytes_=_doctor.BLOAT_BYTES_MIN)])
    assert bloated.verdict == "warn"
    index = Relation("jobs_fetch_idx", True, "jobs", _doctor.BLOAT_BYTES_MIN, 8192, 0, 0, 100, 40)
    (finding,) = _doctor.check_bloat([index])
    assert finding.verdict == "warn"
    assert "REINDEX INDEX CONCURRENTLY pgjobs.jobs_fetch_idx" in finding.fix


def test_the_notify_queue():
    assert _doctor.check_notify(SERVER).verdict == "ok"
    full = Server(**{**SERVER.__dict__, "notify_usage": _doctor.NOTIFY_FAIL})
    assert _doctor.check_notify(full).verdict == "fail"


def test_autovacuum_settings_against_the_migrations():
    assert _doctor.check_autovacuum(SERVER).verdict == "ok"
    reset = Server(**{**SERVER.__dict__, "jobs_reloptions": None})
    finding = _doctor.check_autovacuum(reset)
    assert finding.verdict == "warn"
    assert "ALTER TABLE pgjobs.jobs_live SET (autovacuum_vacuum_scale_factor = 0.01" in finding.fix
    off = Server(**{**SERVER.__dict__, "autovacuum": False})
    assert _doctor.check_autovacuum(off).verdict == "fail"
    disabled = Server(
        **{
            **SERVER.__dict__,
            "jobs_reloptions": [*SERVER.jobs_reloptions, "autovacuum_enabled=false"],
        }
    )
    assert "RESET (autovacuum_enabled)" in _doctor.check_autovacuum(disabled).fix


def test_the_expected_reloptions_are_the_migrations():
    initial = (REPO / "migrations" / "versions" / "0001_initial_schema.py").read_text()
    for name, value in _doctor.JOBS_RELOPTIONS.items():
        assert re.search(rf"\b{name} = {re.escape(value)}\b", initial), name


def test_connections_against_max_connections():
    counts = {"pgjobs-worker": 10, "pgjobs-listener": 2, "psql": 1}
    finding = _doctor.check_connections(SERVER, counts)
    assert (finding.verdict, finding.value) == ("ok", 13)
    assert "10 pgjobs-worker, 2 pgjobs-listener" in finding.detail
    assert _doctor.check_connections(SERVER, {"app": 80}).verdict == "warn"
    assert _doctor.check_connections(SERVER, {"app": 97}).verdict == "fail"


def test_a_waiting_worker_without_a_listener_session():
    deaf = _worker(["default"], awaiting=True)
    assert _doctor.check_listeners(SERVER, [deaf]).verdict == "warn"
    hearing = WorkerRow(1, "h", 42, ["default"], True, 1.0, listener_seen=True)
    assert _doctor.check_listeners(SERVER, [hearing]).verdict == "ok"
    busy = _worker(["default"], awaiting=False)  # not listening for work just now
    assert _doctor.check_listeners(SERVER, [busy]).verdict == "ok"
    proxied = Server(**{**SERVER.__dict__, "client_port": 6432})
    assert "port 6432" in _doctor.check_listeners(proxied, [deaf]).detail


def test_running_jobs_on_dead_workers():
    live = RunningJob(1, "q", 1, 1.0)
    assert _doctor.check_orphans([live]).verdict == "ok"
    gone = RunningJob(2, "q", 9, None)
    silent = RunningJob(3, "q", 8, _doctor.ORPHAN_SECONDS)
    finding = _doctor.check_orphans([live, gone, silent])
    assert (finding.verdict, finding.value) == ("warn", 2)
    assert "2, 3" in finding.detail


def test_due_jobs_on_an_unserved_queue_fail():
    queues = [DueQueue("default", 3, 1.0, False), DueQueue("mail", 1, 1.0, False)]
    findings = _doctor.check_queues(queues, [_worker(["default"]), _worker(["mail"], silent=99)])
    assert [(f.check, f.verdict) for f in findings] == [
        ("queue default", "ok"),
        ("queue mail", "fail"),
    ]
    paused = _doctor.check_queues([DueQueue("mail", 1, 1.0, True)], [])
    assert paused[0].verdict == "ok"
    assert _doctor.check_queues([], [])[0].verdict == "ok"


def test_a_live_worker_of_every_queue_serves_them_all():
    queues = [DueQueue("default", 3, 1.0, False), DueQueue("mail", 1, 1.0, False)]
    served = _doctor.check_queues(queues, [_worker(["*", "default"])])
    assert [f.verdict for f in served] == ["ok", "ok"]
    stale = _doctor.check_queues(queues, [_worker(["*"], silent=99)])
    assert [f.verdict for f in stale] == ["fail", "fail"]


@pytest.mark.parametrize(
    ("seconds", "verdict"),
    [(0.0, "ok"), (_doctor.DUE_WARN_SECONDS, "warn"), (_doctor.DUE_FAIL_SECONDS, "fail")],
)
def test_the_oldest_due_job_of_a_served_queue(seconds, verdict):
    (finding,) = _doctor.check_queues([DueQueue("q", 1, seconds, False)], [_worker(["q"])])
    assert finding.verdict == verdict


@pytest.mark.parametrize(
    ("failures", "verdict"),
    [
        (Failures(0, 0, 0), "ok"),
        (Failures(5, 0, 5), "ok"),  # too few to matter
        (Failures(12, 1, 13), "warn"),
        (Failures(12, 10, 22), "ok"),  # no faster than the hour before
        (Failures(12, 1, 24 * 10), "ok"),  # no faster than the day's average
    ],
)
def test_growth_of_failed_jobs(failures, verdict):
    assert _doctor.check_failures(failures).verdict == verdict


def test_schema_revisions():
    current = _migrate.SCHEMA_REVISION
    assert _doctor.check_revision(Schema(current, current)).verdict == "ok"
    older = _doctor.check_revision(Schema("0001"))
    assert older.verdict == "fail"
    assert "python -m pgjobs migrate" in older.fix
    newer = _doctor.check_revision(Schema("9999", "9999"))
    assert newer.verdict == "fail"
    assert "upgrade the pgjobs package" in newer.fix
    # A newer revision inside this code's window is no failure, and says so.
    expanded = _doctor.check_revision(Schema("9999", current))
    assert expanded.verdict == "ok"
    assert "inside the window" in expanded.detail


def test_the_human_output_puts_the_verdict_first_and_the_fix_below():
    text = render([Finding("xmin", "warn", 61.0, "pid 7", "end it"), Finding("a", "ok", 1, "b")])
    assert text.splitlines() == [
        "WARN  xmin = 61.0: pid 7",
        "      fix: end it",
        "OK    a = 1: b",
        "1 ok, 1 warn, 0 fail",
    ]


def test_the_sql_finds_pgjobs_sessions_by_the_names_pgjobs_gives_them():
    # SQL cannot import pgjobs._names: the listener's name and the pid tag
    # are spelled out in the queries, so check they agree.
    tag = with_pid(APP_NAME_LISTENER, 7)
    prefix = tag.removesuffix("7").removesuffix("=")
    assert f"'{prefix}=' || w.pid" in _sql.text("doctor_workers")
    assert re.sub(r" pid=[0-9]+$", "", tag) == APP_NAME_LISTENER
    assert "' pid=[0-9]+$'" in _sql.text("doctor_connections")
