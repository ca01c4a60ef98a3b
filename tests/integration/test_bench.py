"""`python -m pgjobs bench` runs end to end on a real server with tiny N (no timing assertions)."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
from collections.abc import Iterator

import psycopg
import pytest

from tests.conftest import REPO

pytestmark = pytest.mark.slow  # benchmark runs, even when kept small


def test_bench_smoke(server_dsn: str) -> None:
    proc = subprocess.Popen(
        [
            sys.executable, "-m", "pgjobs", "--log-level", "warning", "bench",
            "--dsn", server_dsn, "--jobs", "300", "--compare-raw", "--concurrency", "10",
            "--workload", "enqueue-single,enqueue-bulk,drain", "--batch", "100", "--json",
        ],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO,
    )  # fmt: skip
    try:
        stdout, stderr = proc.communicate(timeout=240)
    finally:
        proc.kill()
    assert proc.returncode == 0, stderr[-3000:]
    report = json.loads(stdout)
    assert report["skipped"] == {}
    assert report["environment"]["postgres"]
    measured = {(r["system"], r["workload"]): r for r in report["results"]}
    for system in ("pgjobs", "raw"):
        for workload in ("enqueue-single", "enqueue-bulk", "drain"):
            assert measured[system, workload]["value"] > 0
    assert 0 < measured["pgjobs", "drain"]["extra"]["rss_mb"] < 1000
    # The machine's busy cores while the jobs ran, read from /proc/stat in
    # ticks of 10 ms: over a drain of 300 jobs, only roughly.
    assert 0 <= measured["pgjobs", "drain"]["extra"]["busy_cores"] <= 4 * (os.cpu_count() or 1)
    assert any(t["name"] == "drain C=10 vs raw" for t in report["targets"])
    # It dropped the scratch databases it made (their names carry its pid).
    with psycopg.connect(server_dsn, autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_database WHERE datname LIKE %s",
            (f"pgjobs\\_bench\\_%\\_{proc.pid}\\_%",),
        ).fetchone()
    assert row == (0,)


def test_a_drain_of_jobs_that_compute_spends_their_cpu(server_dsn: str) -> None:
    proc = subprocess.run(
        [
            sys.executable, "-m", "pgjobs", "--log-level", "warning", "bench",
            "--dsn", server_dsn, "--jobs", "200", "-w", "drain", "--job-cpu-us", "2000", "--json",
        ],
        capture_output=True, text=True, cwd=REPO, timeout=240, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    (drain,) = json.loads(proc.stdout)["results"]
    assert drain["params"] == {"C": 50, "P": 1, "cpu_us": 2000}
    # One process spends 2 ms of CPU on each job, one job at a time (the
    # GIL): at most 500 jobs a second, whatever the machine.
    assert drain["value"] < 520


def test_enqueue_single_takes_turns_and_keeps_the_systems_that_do_not_fail(
    server_dsn: str,
) -> None:
    from pgjobs.bench import _bench

    class Breaks(_bench.RawSystem):
        """The raw reference, failing at its 1,500th job: in its second turn."""

        name = "breaks"

        @contextlib.contextmanager
        def producer(self, *, wake: bool) -> Iterator[_bench.JobHook]:
            with super().producer(wake=wake) as enqueue:

                def failing(i: int) -> None:
                    if i == 1500:
                        raise RuntimeError("broken on purpose")
                    enqueue(i)

                yield failing

    calls: list[tuple[str, int]] = []

    def recorded(system: _bench.System) -> _bench.System:
        """`system`, with each job its producer enqueues recorded in `calls`."""
        producer = system.producer

        @contextlib.contextmanager
        def recording(*, wake: bool) -> Iterator[_bench.JobHook]:
            with producer(wake=wake) as enqueue:

                def record(i: int) -> None:
                    enqueue(i)
                    calls.append((system.name, i))

                yield record

        system.producer = recording  # type: ignore[method-assign]
        return system

    slice_ = _bench.SINGLE_SLICE
    n = 2 * slice_ + 1  # two whole turns and one of a single job
    with contextlib.ExitStack() as stack:
        systems = [
            recorded(cls(stack.enter_context(_bench.scratch_database(server_dsn, cls.name))))
            for cls in (_bench.PgjobsSystem, _bench.PgjobsPoolSystem, _bench.RawSystem, Breaks)
        ]
        for system in systems:
            system.setup()
        results, failed = _bench.run_enqueue_single(systems, n)
        assert [r.system for r in results] == ["pgjobs", "pgjobs-pool", "raw"]
        assert all(r.value > 0 for r in results)
        assert failed == {"breaks": "RuntimeError: broken on purpose"}
        # Turn by turn, in the order given; "breaks" drops out in its second.
        assert calls == [
            (system.name, i)
            for start in range(0, n, slice_)
            for system in systems
            for i in range(start, min(start + slice_, n))
            if system.name != "breaks" or i < 1500
        ]
        for system in systems:
            table = "pgjobs.jobs" if system.name.startswith("pgjobs") else "raw_jobs"
            with psycopg.connect(system.dsn) as conn:
                (ids,) = conn.execute(
                    f"SELECT array_agg((args->>'i')::int ORDER BY id) FROM {table}"
                ).fetchone()
            expected = n if system.name != "breaks" else 1500
            assert ids == list(range(expected)), system.name


def test_bench_refuses_a_job_count_below_one() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "pgjobs", "bench", "--jobs", "0"],
        capture_output=True, text=True, cwd=REPO, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 2
    assert "expected a positive integer, got '0'" in proc.stderr
