"""tests/bench/pgbouncer_drain.py end to end with tiny N: it prints numbers, nothing is timed."""

from __future__ import annotations

import re
import subprocess
import sys

import psycopg
import pytest

from tests import pgbouncer
from tests.conftest import REPO

pytestmark = [
    pytest.mark.slow,  # benchmark runs, even when kept small
    pytest.mark.skipif(
        not pgbouncer.available(),
        reason=f"no pgbouncer at {pgbouncer.BINARY}: apt-get install pgbouncer (CI installs it)",
    ),
]


def test_pgbouncer_drain_smoke(server_dsn: str) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "tests.bench.pgbouncer_drain", server_dsn,
         "--jobs", "300", "--rounds", "2"],
        capture_output=True, text=True, cwd=REPO, timeout=300, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = proc.stdout
    # Turns in rotating order, every job run exactly once in each (checked by the script).
    assert re.search(r"round 1: direct +[\d,]+ jobs/s\nround 1: pgbouncer +[\d,]+ jobs/s", out), out
    assert re.search(r"round 2: pgbouncer +[\d,]+ jobs/s\nround 2: direct +[\d,]+ jobs/s", out), out
    assert re.search(r"pgbouncer/direct per round [\d.]+, [\d.]+, median [\d.]+x", out), out
    with psycopg.connect(server_dsn) as conn:
        left = conn.execute(
            "SELECT datname FROM pg_database WHERE datname LIKE 'pgjobs_bench_pgbouncer_%'"
        ).fetchall()
    assert left == []
