"""`python -m pgjobs dashboard` as a real subprocess: it serves, and refuses unsafe exposure."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time

import pytest

pytest.importorskip("starlette", reason="the web extra is not installed: pip install 'pgjobs[web]'")
httpx = pytest.importorskip("httpx", reason="the web extra is not installed")

from tests.conftest import REPO  # noqa: E402


def _env(dsn: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PGJOBS_DASHBOARD")}
    env.update(PGJOBS_DSN=dsn, PYTHONPATH=str(REPO), **extra)
    return env


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_refuses_a_public_bind_without_tokens(dsn: str) -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pgjobs",
            "dashboard",
            "tests.web.app:app",
            "--bind",
            "0.0.0.0:8080",
        ],
        env=_env(dsn),
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert "refusing to serve the dashboard on 0.0.0.0 without tokens" in done.stderr
    assert "--insecure" in done.stderr


def test_serves_the_api_with_a_token(dsn: str) -> None:
    port = _free_port()
    token = "cli-admin-token-0123456789"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "pgjobs",
            "dashboard",
            "tests.web.app:app",
            "--bind",
            f"127.0.0.1:{port}",
        ],
        env=_env(dsn, PGJOBS_DASHBOARD_TOKENS=f"admin:{token}"),
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                r = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2)
                break
            except httpx.TransportError:
                assert proc.poll() is None, "the dashboard exited"
                assert time.monotonic() < deadline, "the dashboard did not start"
                time.sleep(0.1)
        assert r.status_code == 200
        headers = {"Authorization": f"Bearer {token}"}
        r = httpx.post(
            f"http://127.0.0.1:{port}/api/v1/jobs", json={"task": "noop"}, headers=headers
        )
        assert r.status_code == 201
    finally:
        proc.terminate()
        output = proc.communicate(timeout=20)[0].decode()
    assert f"pgjobs dashboard on http://127.0.0.1:{port}/" in output
