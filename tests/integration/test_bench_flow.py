"""`python -m tests.bench.flow` runs end to end with tiny N: it prints numbers, nothing is timed."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import psycopg
import pytest

from tests.conftest import REPO

pytestmark = pytest.mark.slow  # benchmark runs, even when kept small


def test_flow_bench_smoke(server_dsn: str) -> None:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
    }
    proc = subprocess.run(
        [
            sys.executable, "-m", "tests.bench.flow", server_dsn, "all",
            "--seconds", "2", "--steps", "5", "--members", "20",
        ],
        capture_output=True, text=True, cwd=REPO, env=env, timeout=240, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = proc.stdout
    started = re.search(r"rate 10/s, burst 1, 3 worker processes, 2 s: (\d+) started", out)
    assert started is not None, out
    # Two seconds at 10/s, from the first start: at most 20 (nothing is asserted on the low side).
    assert 0 < int(started.group(1)) <= 20
    assert re.search(r"busiest 1 s window (\d+) \(limit 10\)", out), out
    assert re.search(r"chain of 5 no-op steps, 1 worker: [\d.]+ s, \d+ steps/s", out), out
    assert re.search(r"group of 20 no-op members, 1 worker: .* callback started [\d.]+ ms", out), (
        out
    )
    # Its scratch databases are gone.
    with psycopg.connect(server_dsn, autocommit=True) as conn:
        left = conn.execute("SELECT count(*) FROM pg_database WHERE datname LIKE 'bench_flow_%'")
        assert left.fetchone() == (0,)
