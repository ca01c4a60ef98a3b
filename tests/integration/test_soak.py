"""`python -m pgjobs bench -w soak` runs end to end: a row per interval and no job lost."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.conftest import REPO

pytestmark = pytest.mark.slow  # a benchmark run of some seconds


def test_soak_reports_each_interval_and_loses_no_job(server_dsn: str) -> None:
    proc = subprocess.run(
        [
            sys.executable, "-m", "pgjobs", "--log-level", "warning", "bench",
            "--dsn", server_dsn, "-w", "soak", "--duration", "6s", "--rate", "200",
            "--soak-interval", "2", "--concurrency", "10", "--compare-raw", "--json",
            "--hold-xmin", "2s:4s",
        ],
        capture_output=True, text=True, cwd=REPO, timeout=240,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(proc.stdout)
    assert report["skipped"] == {}
    # The raw reference does not support the soak: pgjobs alone ran it.
    (soak,) = report["results"]
    assert (soak["system"], soak["workload"]) == ("pgjobs", "soak")
    assert soak["params"] == {"rate": 200, "C": 10, "P": 1, "seconds": 6}
    extra = soak["extra"]
    assert extra["interval_s"] == 2.0
    # A snapshot was held from about 2 s to 4 s; 200 jobs/s are easy to keep up under it.
    hold = extra["hold"]
    assert 2.0 <= hold["held_s"][0] < hold["held_s"][1] <= 5.0
    assert hold["held_rate"] > 0
    assert hold["baseline_rate"] > 0
    assert hold["recovered_after_s"] is not None
    rows = extra["intervals"]
    assert [row["interval"] for row in rows] == [1, 2, 3]
    for row in rows:
        assert row["completed"] > 0
        assert row["latency_p50_ms"] > 0
        assert row["latency_p99_ms"] >= row["latency_p50_ms"]
        assert row["queue_depth"] >= 0
        live = row["tables"]["jobs_live"]
        assert live["live"] + live["dead"] > 0
        assert live["total_bytes"] >= live["table_bytes"] + live["index_bytes"] > 0
        assert {"workers", "alembic_version", "job_history"} <= set(row["tables"])
    # Finished jobs are kept (a day's retention), in the history: it only grows.
    sizes = [row["tables"]["job_history"]["total_bytes"] for row in rows]
    assert sizes == sorted(sizes)
    # Every job enqueued ran exactly once.
    assert extra["enqueued"] == sum(row["enqueued"] for row in rows) > 0
    assert extra["jobs"] == {
        "ran": extra["enqueued"], "ran_twice": 0, "unexpected": 0, "left_queued": 0, "lost": 0,
    }  # fmt: skip
    ratio = extra["end_ratio"]
    assert ratio["ratio"] > 0
    assert "fifth" in ratio["basis"]
    # The progress lines went to stderr, a line per interval.
    assert [line.split()[1] for line in proc.stderr.splitlines() if "soak #" in line] == [
        "#1",
        "#2",
        "#3",
    ]


def test_soak_refuses_a_bad_duration() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "pgjobs", "bench", "-w", "soak", "--duration", "30 minutes"],
        capture_output=True, text=True, cwd=REPO, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 2
    assert "such as 30m, 90s, 1h or a number of seconds" in proc.stderr


def test_a_backlog_shows_in_the_depth_and_stays_queued_not_lost(
    server_dsn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pgjobs.bench import _bench, _soak

    # One slot cannot run 1 ms jobs at 3,000/s, and no time to drain after.
    monkeypatch.setattr(_soak, "DRAIN_TIMEOUT", 0.0)
    lines: list[str] = []
    with _bench.scratch_database(server_dsn, "soak") as dsn:
        system = _bench.PgjobsSystem(dsn)
        system.setup()
        result = _bench.run_soak(
            system,
            rate=3000,
            duration=3.0,
            concurrency=1,
            processes=1,
            interval=1.0,
            say=lines.append,
        )
    rows = result.extra["intervals"]
    depths = [row["queue_depth"] for row in rows]
    assert depths == sorted(depths)
    assert depths[-1] > 1000
    jobs = result.extra["jobs"]
    assert jobs["left_queued"] > 0
    assert jobs["lost"] == jobs["ran_twice"] == 0
    assert jobs["ran"] + jobs["left_queued"] == result.extra["enqueued"]
    assert len(lines) == len(rows) == 3
