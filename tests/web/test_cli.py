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

DASHBOARD = [sys.executable, "-m", "pgjobs", "dashboard", "tests.web.app:app"]


def _env(dsn: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PGJOBS_DASHBOARD")}
    env.update(PGJOBS_DSN=dsn, PYTHONPATH=str(REPO), **extra)
    return env


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _refused(dsn: str, *args: str) -> subprocess.CompletedProcess[str]:
    """`pgjobs dashboard tests.web.app:app *args`, expected to stop at once with exit 2."""
    done = subprocess.run(
        [*DASHBOARD, *args],
        env=_env(dsn),
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2, done.stderr
    return done


def test_refuses_a_public_bind_without_tokens(dsn: str) -> None:
    done = _refused(dsn, "--bind", "0.0.0.0:8080")
    assert "refusing to serve the dashboard on 0.0.0.0 without tokens" in done.stderr
    assert "--insecure" in done.stderr


def _serve(dsn: str, *args: str, **env: str) -> tuple[subprocess.Popen[bytes], int]:
    """`pgjobs dashboard tests.web.app:app` on a free loopback port, once it answers."""
    port = _free_port()
    proc = subprocess.Popen(
        [*DASHBOARD, "--bind", f"127.0.0.1:{port}", *args],
        env=_env(dsn, **env),
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 30
    while True:
        try:
            httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2)
            return proc, port
        except httpx.TransportError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                output = proc.communicate(timeout=20)[0].decode()
                raise AssertionError(f"the dashboard did not start:\n{output}") from None
            time.sleep(0.1)


def _stop(proc: subprocess.Popen[bytes]) -> str:
    proc.terminate()
    return proc.communicate(timeout=20)[0].decode()


def test_serves_the_api_with_a_token(dsn: str) -> None:
    token = "cli-admin-token-0123456789"
    proc, port = _serve(dsn, PGJOBS_DASHBOARD_TOKENS=f"admin:{token}")
    try:
        r = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2)
        assert r.status_code == 200
        headers = {"Authorization": f"Bearer {token}"}
        r = httpx.post(
            f"http://127.0.0.1:{port}/api/v1/jobs", json={"task": "noop"}, headers=headers
        )
        assert r.status_code == 201
    finally:
        output = _stop(proc)
    assert f"pgjobs dashboard on http://127.0.0.1:{port}/" in output


def test_serves_under_a_root_path_whether_the_proxy_strips_it_or_not(dsn: str) -> None:
    proc, port = _serve(dsn, "--root-path", "/pgjobs")
    base = f"http://127.0.0.1:{port}"
    try:
        # A proxy that strips /pgjobs sends /jobs; one that does not (or a
        # visit to the printed address) sends /pgjobs/jobs. Links carry it.
        for path in ("/jobs", "/pgjobs/jobs"):
            r = httpx.get(base + path)
            assert r.status_code == 200, path
            assert 'href="/pgjobs/static/style.css"' in r.text, path
            assert 'href="/jobs' not in r.text, path
        assert httpx.get(base + "/pgjobs/static/style.css").status_code == 200
        assert httpx.get(base + "/pgjobs/pgjobs/jobs").status_code == 404
        # A trailing slash is redirected to a path, never to the Host the client named.
        r = httpx.get(base + "/pgjobs/jobs/?status=failed", headers={"Host": "evil.example"})
        assert r.status_code == 307
        assert r.headers["location"] == "/pgjobs/jobs?status=failed"
    finally:
        output = _stop(proc)
    assert f"pgjobs dashboard on http://127.0.0.1:{port}/pgjobs/" in output


@pytest.mark.parametrize("root_path", ["pgjobs", "/pgjobs/", "//pgjobs"])
def test_refuses_a_root_path_that_is_not_an_absolute_path_without_a_trailing_slash(
    dsn: str, root_path: str
) -> None:
    done = _refused(dsn, "--root-path", root_path)
    assert "--root-path: a path that starts with / and does not end with one" in done.stderr
    assert repr(root_path) in done.stderr
