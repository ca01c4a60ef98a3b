"""`python -m pgjobs demo` as a user runs it: on a configured database, and on its own server."""

from __future__ import annotations

import os
import re
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import psycopg

REPO = Path(__file__).resolve().parents[2]


def _env(dsn: str | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PGJOBS_DSN", "DATABASE_URL")}
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])
    if dsn is not None:
        env["PGJOBS_DSN"] = dsn
    return env


def _demo(env: dict[str, str], cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    # stdin is not a terminal here, so the demo must not wait for Enter.
    return subprocess.run(
        [sys.executable, "-m", "pgjobs", "demo", *args],
        env=env,
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
    )


def _postgres_processes(data_dir: str) -> list[str]:
    """Live processes whose command line names `data_dir` (a leftover server would)."""
    import psutil  # installed with pgserver, the embedded extra the tests depend on

    found = []
    for proc in psutil.process_iter(["cmdline", "status"]):
        cmdline = " ".join(proc.info["cmdline"] or [])
        if data_dir in cmdline and proc.info["status"] != psutil.STATUS_ZOMBIE:
            found.append(f"{proc.pid} {cmdline}")
    return found


def _assert_reported_everything(out: str, jobs: int) -> None:
    assert "Summary" in out
    assert f"{jobs} of {jobs} jobs ran to the end" in out
    assert re.search(r"Job \d+ \(demo\.charge_card\) is failed, the dead-letter state", out)
    assert "PaymentDeclinedError: card declined for order 1042" in out
    assert "SELECT status, count(*) FROM pgjobs.jobs GROUP BY 1;" in out
    # The dashboard is served on loopback during the run (the web extra is a test dependency).
    assert re.search(r"dashboard: http://127\.0\.0\.1:\d+/", out)
    # The worker's structured logs (a warning per retry) stay out of the way.
    assert "job.retrying" not in out


def test_demo_on_the_configured_database(dsn: str, tmp_path: Path) -> None:
    result = _demo(_env(dsn), tmp_path, "--jobs", "60")

    assert result.returncode == 0, result.stdout + result.stderr
    _assert_reported_everything(result.stdout, 60)
    assert "job.retrying" not in result.stderr
    assert "starting an embedded PostgreSQL" not in result.stdout
    assert f"\n  psql {shlex.quote(dsn)}\n" in result.stdout
    with psycopg.connect(dsn) as conn:
        rows = conn.execute(
            "SELECT task, status::text, count(*) FROM pgjobs.jobs GROUP BY 1, 2"
        ).fetchall()
    counts = {(task, status): n for task, status, n in rows}
    assert counts.pop(("demo.charge_card", "failed")) == 1
    assert {status for _, status in counts} == {"succeeded"}
    assert sum(counts.values()) == 59


def test_demo_starts_and_stops_an_embedded_server(tmp_path: Path) -> None:
    result = _demo(_env(None), tmp_path, "--jobs", "60")

    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    _assert_reported_everything(out, 60)
    found = re.search(r"starting an embedded PostgreSQL in (\S+)", out)
    assert found, out
    data_dir = found.group(1)
    assert re.search(r"^  \S*/psql 'postgresql://postgres:@/postgres\?host=", out, re.MULTILINE)
    assert "Embedded PostgreSQL stopped." in out
    assert not Path(data_dir).exists()
    assert _postgres_processes(data_dir) == []


def test_interrupting_the_demo_stops_everything(tmp_path: Path) -> None:
    data_dir = tmp_path / "pg"
    proc = subprocess.Popen(
        [sys.executable, "-m", "pgjobs", "demo", "--jobs", "2000", "--data-dir", str(data_dir)],
        env=_env(None),
        cwd=tmp_path,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert proc.stdout is not None
    lines = []
    try:
        deadline = time.monotonic() + 60
        for line in proc.stdout:
            lines.append(line)
            if "progress:" in line and "0/2000 done" not in line:
                break  # jobs are running
            assert time.monotonic() < deadline, "".join(lines)
        proc.send_signal(signal.SIGINT)
        rest, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    out = "".join(lines) + rest

    assert proc.returncode == 130, out
    assert "Interrupted: stopping the worker" in out
    assert re.search(r"interrupted: \d+ jobs still queued were cancelled", out)
    assert "Embedded PostgreSQL stopped; its data is kept in" in out
    assert not (data_dir / "postmaster.pid").exists()
    assert _postgres_processes(str(data_dir)) == []
