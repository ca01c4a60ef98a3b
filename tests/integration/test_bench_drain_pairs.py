"""`tests/bench/drain_pairs.py` runs end to end with tiny N: it prints numbers, nothing is timed."""

from __future__ import annotations

import re
import subprocess
import sys

import psycopg
import pytest

from tests.conftest import REPO

pytestmark = pytest.mark.slow  # benchmark runs, even when kept small


def test_drain_pairs_smoke(server_dsn: str) -> None:
    # The same checkout under two names: two databases, migrated once each; one of
    # them without the counts trigger and drained by two worker processes.
    proc = subprocess.run(
        [
            sys.executable, str(REPO / "tests" / "bench" / "drain_pairs.py"),
            "--dsn", server_dsn, "--rounds", "2", "--jobs", "200",
            "--prep", "dropped", "DROP TRIGGER count_finished ON pgjobs.job_history",
            "--processes", "dropped", "2",
            f"kept={REPO}", f"dropped={REPO}",
        ],
        capture_output=True, text=True, cwd=REPO, timeout=300, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = proc.stdout
    # Two rounds, the order turning: each line gives both checkouts' numbers.
    assert re.search(r"round 1: kept [\d,]+/s \(\d+ / \d+ µs\)  dropped", out), out
    assert re.search(r"round 2: dropped [\d,]+/s \(\d+ / \d+ µs\)  kept", out), out
    assert re.search(r"dropped/kept: median [\d.]+, lower in \d of 2 rounds", out), out
    with psycopg.connect(server_dsn) as conn:
        left = conn.execute(
            "SELECT datname FROM pg_database WHERE datname LIKE 'pgjobs_pairs_%'"
        ).fetchall()
    assert left == []


def test_drain_pairs_refuses_a_directory_without_pgjobs(tmp_path) -> None:
    proc = subprocess.run(
        [
            sys.executable, str(REPO / "tests" / "bench" / "drain_pairs.py"),
            f"a={REPO}", f"b={tmp_path}",
        ],
        capture_output=True, text=True, cwd=REPO, timeout=60, check=False,
    )  # fmt: skip
    assert proc.returncode == 2
    assert "each a directory holding pgjobs/" in proc.stderr
