"""`python -m pgjobs worker --health-port`: probed over HTTP, as Compose and Kubernetes do."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import urllib.error
import urllib.request

import yaml

from tests.conftest import REPO, wait_until

APP = "tests.apps.basic:app"


def status(port: int, path: str) -> int:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as answer:
            return int(answer.status)
    except urllib.error.HTTPError as error:
        return error.code


def served_port(output: str) -> int | None:
    for line in output.splitlines():
        if line.startswith("{"):
            event = json.loads(line)
            if event.get("event") == "worker.health_serving":
                return int(event["port"])
    return None


def test_a_worker_serves_its_probes_until_it_stops(dsn, conn, start_worker):
    worker = start_worker(APP, "--health-port", "0", "--health-host", "127.0.0.1")
    worker.wait_for_output("worker.started")
    port = served_port(worker.output())
    assert port is not None
    wait_until(lambda: status(port, "/readyz") == 200)
    assert status(port, "/livez") == 200
    assert status(port, "/nothing") == 404
    # The healthcheck compose.yaml runs in the worker's container, on this port.
    compose = yaml.safe_load((REPO / "compose.yaml").read_text())
    check = compose["services"]["worker"]["healthcheck"]["test"]
    assert check[0] == "CMD"
    command = [arg.replace("8081", str(port)) for arg in check[1:]]
    assert command[0] == "python"
    assert subprocess.run([sys.executable, *command[1:]], timeout=30).returncode == 0
    worker.signal(signal.SIGTERM)
    assert worker.wait() == 0
    # Gone with the worker: the same check now fails, as it should.
    assert subprocess.run([sys.executable, *command[1:]], timeout=30).returncode != 0


def test_a_taken_port_is_one_line_and_exit_2_before_registering(dsn, conn):
    taken = socket.create_server(("127.0.0.1", 0))
    port = taken.getsockname()[1]
    env = {
        **os.environ,
        "PGJOBS_DSN": dsn,
        "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
    }
    try:
        result = subprocess.run(
            [sys.executable, "-m", "pgjobs", "worker", APP, "--health-port", str(port)],
            capture_output=True,
            text=True,
            timeout=60,
            env=env,
            cwd=REPO,
        )
    finally:
        taken.close()
    assert result.returncode == 2
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("pgjobs: error: cannot serve health probes on ")
    assert f":{port}" in lines[0]
    assert conn.execute("SELECT count(*) FROM pgjobs.workers").fetchone() == (0,)
