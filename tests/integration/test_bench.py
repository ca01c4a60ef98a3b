"""`python -m pgjobs bench` runs end to end on a real server with tiny N (no timing assertions)."""

from __future__ import annotations

import json
import subprocess
import sys

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
