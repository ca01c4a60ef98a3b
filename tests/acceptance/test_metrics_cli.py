"""`python -m pgjobs worker --metrics-port` as a subprocess: served, or one line and exit 2."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import urllib.request
from typing import Any

import pytest

from tests.conftest import REPO

pytest.importorskip(
    "prometheus_client", reason="the metrics extra is not installed: pip install 'pgjobs[metrics]'"
)

APP = "tests.apps.basic:app"


def _env(dsn: str) -> dict[str, str]:
    return {
        **os.environ,
        "PGJOBS_DSN": dsn,
        "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
    }


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_a_taken_port_is_one_line_and_exit_2(dsn: str, conn: object) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        result = subprocess.run(
            [sys.executable, "-m", "pgjobs", "worker", APP, "--metrics-port", str(port),
             "--metrics-address", "127.0.0.1"],
            env=_env(dsn),
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=60,
        )  # fmt: skip
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert f"metrics port {port}" in lines[0]
    assert "already in use" in lines[0]
    assert "Traceback" not in result.stderr


def test_without_prometheus_client_the_hint_and_exit_2(dsn: str) -> None:
    # The package is installed here: hide it, as a machine without the extra would.
    code = (
        "import sys; sys.modules['prometheus_client'] = None\n"
        "from pgjobs.cli._main import main\n"
        f"sys.exit(main(['worker', {APP!r}, '--metrics-port', '9']))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        env=_env(dsn),
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2, result.stderr
    assert "pip install 'pgjobs[metrics]'" in result.stderr
    assert "Traceback" not in result.stderr


def test_the_worker_process_serves_metrics_and_stops_cleanly(dsn: str, start_worker: Any) -> None:
    port = _free_port()
    worker = start_worker(APP, "--metrics-port", str(port), "--metrics-address", "127.0.0.1")
    worker.wait_for_output("worker.started")
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        body = response.read().decode()
    assert "pgjobs_worker_free_slots 10.0" in body
    assert "worker.metrics_serving" in worker.output()
    worker.signal(signal.SIGTERM)
    assert worker.wait() == 0
