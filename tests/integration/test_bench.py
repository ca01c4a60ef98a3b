"""`python -m pgjobs bench` runs end to end on a real server with tiny N (no timing assertions)."""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
from collections.abc import Iterator

import psycopg

from tests.conftest import REPO


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
    assert any(t["name"] == "drain C=10 vs raw" for t in report["targets"])
    # It dropped the scratch databases it made (their names carry its pid).
    with psycopg.connect(server_dsn, autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_database WHERE datname LIKE %s",
            (f"pgjobs\\_bench\\_%\\_{proc.pid}\\_%",),
        ).fetchone()
    assert row == (0,)


def test_enqueue_single_takes_turns_and_keeps_the_systems_that_do_not_fail(
    server_dsn: str,
) -> None:
    from pgjobs import _bench

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

    with contextlib.ExitStack() as stack:
        systems: list[_bench.System] = [
            cls(stack.enter_context(_bench.scratch_database(server_dsn, cls.name)))
            for cls in (_bench.PgjobsSystem, _bench.PgjobsPoolSystem, _bench.RawSystem, Breaks)
        ]
        for system in systems:
            system.setup()
        n = 2 * _bench.SINGLE_SLICE + 1  # two whole turns and one of a single job
        results, failed = _bench.run_enqueue_single(systems, n)
        assert [r.system for r in results] == ["pgjobs", "pgjobs-pool", "raw"]
        assert all(r.value > 0 for r in results)
        assert failed == {"breaks": "RuntimeError: broken on purpose"}
        written = {
            "pgjobs": "SELECT array_agg((args->>'i')::int ORDER BY id) FROM pgjobs.jobs",
            "pgjobs-pool": "SELECT array_agg((args->>'i')::int ORDER BY id) FROM pgjobs.jobs",
            "raw": "SELECT array_agg((args->>'i')::int ORDER BY id) FROM raw_jobs",
            "breaks": "SELECT array_agg((args->>'i')::int ORDER BY id) FROM raw_jobs",
        }
        for system in systems:
            with psycopg.connect(system.dsn) as conn:
                (ids,) = conn.execute(written[system.name]).fetchone()
            expected = n if system.name != "breaks" else 1500
            assert ids == list(range(expected)), system.name
