"""The dashboard's authentication under attack: retargeted buttons, redaction, brute force,
sessions and --insecure, over real HTTP (and the `dashboard` command as a subprocess)."""

from __future__ import annotations

import json
import os
import posixpath
import re
import socket
import subprocess
import sys
import time
import urllib.parse
from pathlib import Path
from typing import Any

import psycopg
import pytest

pytest.importorskip("starlette", reason="the web extra is not installed: pip install 'pgjobs[web]'")
httpx = pytest.importorskip("httpx", reason="the web extra is not installed")

from pgjobs.errors import ConfigurationError  # noqa: E402
from pgjobs.web import _auth  # noqa: E402
from tests.conftest import REPO  # noqa: E402
from tests.web.conftest import (  # noqa: E402
    ADMIN,
    ADMIN_TOKEN,
    VIEWER,
    captured_logs,
    insert_job,
)
from tests.web.test_pages import HTML, _csrf, logged_in  # noqa: E402

Conn = psycopg.Connection[Any]

#: A client address other than the test's own, as a proxy on loopback reports
#: it: the test server (uvicorn's defaults) trusts X-Forwarded-For from 127.0.0.1.
ELSEWHERE = {"X-Forwarded-For": "203.0.113.9"}


def _actions(page: str, needle: str) -> list[str]:
    return [a for a in re.findall(r'<form method="post" action="([^"]+)"', page) if needle in a]


def _browser_path(action: str) -> str:
    """The path a browser sends for a form's action: dot segments resolved, escapes kept."""
    return posixpath.normpath(urllib.parse.urlsplit(action).path)


# -- 4: names with /../ keep their buttons on the object they name --------------


def test_a_queue_named_with_dot_dot_pauses_itself_not_another(server: Any, conn: Conn) -> None:
    conn.execute("INSERT INTO pgjobs.queues (name, paused) VALUES ('emails', false)")
    conn.execute("INSERT INTO pgjobs.queues (name, paused) VALUES ('zz/../emails', false)")
    insert_job(conn, queue="emails")
    insert_job(conn, queue="zz/../emails")
    with logged_in(server, ADMIN_TOKEN) as client:
        page = client.get("/queues").text
        # Its pause button and its limits form both name it, encoded.
        paths = sorted(_browser_path(action) for action in _actions(page, "zz"))
        assert paths == ["/queues/zz%2F..%2Femails/limits", "/queues/zz%2F..%2Femails/pause"]
        path = paths[1]
        r = client.post(path, data={"csrf_token": _csrf(page), "confirm": "yes"})
        assert r.status_code == 303, r.text
    paused = dict(conn.execute("SELECT name, paused FROM pgjobs.queues").fetchall())
    assert paused == {"emails": False, "zz/../emails": True}


def test_run_now_of_a_schedule_named_with_dot_dot_runs_that_schedule(
    server: Any, conn: Conn
) -> None:
    for name, n in (("nightly", 1), ("zz/../nightly", 2)):
        conn.execute(
            "INSERT INTO pgjobs.schedules (name, expression, task, args)"
            " VALUES (%s, '0 3 * * *', 'noop', %s)",
            (name, json.dumps({"n": n})),
        )
    with logged_in(server, ADMIN_TOKEN) as client:
        page = client.get("/schedules").text
        action, pause = _actions(page, "zz")
        path = _browser_path(action)
        assert path == "/schedules/zz%2F..%2Fnightly/run", action
        assert _browser_path(pause) == "/schedules/zz%2F..%2Fnightly/pause", pause
        # Without JavaScript the server asks first; its form must keep the name too.
        confirm = client.post(path, data={"csrf_token": _csrf(page)})
        assert confirm.status_code == 200
        assert "Run schedule zz/../nightly now?" in confirm.text
        (again,) = _actions(confirm.text, "nightly")
        assert _browser_path(again) == path
        r = client.post(_browser_path(again), data={"csrf_token": _csrf(page), "confirm": "yes"})
        assert r.status_code == 303, r.text
    rows = conn.execute("SELECT args, meta->>'schedule' FROM pgjobs.jobs WHERE task = 'noop'")
    assert rows.fetchall() == [({"n": 2}, "zz/../nightly")]


@pytest.mark.slow
def test_in_chromium_pause_on_zz_dot_dot_emails_pauses_that_queue(server: Any, conn: Conn) -> None:
    """The browser itself resolves dot segments: click the button as a person would."""
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    chromium = os.environ.get("PGJOBS_CHROMIUM", "/usr/bin/chromium")
    if not Path(chromium).exists():
        pytest.skip(f"no Chromium at {chromium}")
    conn.execute("INSERT INTO pgjobs.queues (name, paused) VALUES ('emails', false)")
    conn.execute("INSERT INTO pgjobs.queues (name, paused) VALUES ('zz/../emails', false)")
    with sync_api.sync_playwright() as p:
        args = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run"]
        browser = p.chromium.launch(executable_path=chromium, args=args, headless=True)
        try:
            page = browser.new_page()
            page.on("dialog", lambda dialog: dialog.accept())
            page.goto(server.url + "login")
            page.fill("input[name=token]", ADMIN_TOKEN)
            page.click("button:has-text('Log in')")
            page.wait_for_url(server.url)
            page.goto(server.url + "queues")
            row = page.locator("tr", has_text="zz/../emails")
            row.locator("button:has-text('Pause')").click()
            page.wait_for_selector("text=Queue paused")
        finally:
            browser.close()
    paused = dict(conn.execute("SELECT name, paused FROM pgjobs.queues").fetchall())
    assert paused == {"emails": False, "zz/../emails": True}


# -- 5: redaction matches spellings, not one exact key ---------------------------


def test_secret_args_are_redacted_for_viewers_in_any_spelling(http: Any, conn: Conn) -> None:
    secret = {
        name: "s3cret"
        for name in (
            "apiKey", "api-key", "API_KEY", "X-Api-Key", "passwd", "pwd", "dbPass", "secret_key",
            "access_token", "private_key", "client_secret", "auth", "basicAuth", "credentials",
            "Cookie", "session", "SESSION_ID", "jwt",
        )
    }  # fmt: skip
    shown = {"key": "k", "author": "ada", "passenger": "bob", "tokens_left": 3}
    job = insert_job(conn, args=json.dumps({**secret, **shown, "nested": [dict(secret)]}))
    as_viewer = http.get(f"/api/v1/jobs/{job}", headers=VIEWER).json()["args"]
    hidden = dict.fromkeys(secret, "[redacted]")
    # `tokens_left` contains `token`: a long word matches anywhere in the key.
    assert as_viewer == {**hidden, **shown, "tokens_left": "[redacted]", "nested": [hidden]}
    assert http.get(f"/api/v1/jobs/{job}", headers=ADMIN).json()["args"]["apiKey"] == "s3cret"


def test_redaction_words_fold_case_and_separators() -> None:
    words = ("api_key", "pin")
    assert _auth.redact({"ApiKey": 1, "x.api.key": 2, "PIN": 3, "userPin": 4}, words) == {
        "ApiKey": "[redacted]",
        "x.api.key": "[redacted]",
        "PIN": "[redacted]",
        "userPin": "[redacted]",
    }
    # Short words must be whole words of the key: `spinner` is not a PIN.
    assert _auth.redact({"spinner": 1, "pinned": 2}, words) == {"spinner": 1, "pinned": 2}


# -- 6: brute force: a limit per client, 429 with Retry-After, every failure logged ------


def test_failed_logins_are_logged_and_lock_the_client_out(serve: Any) -> None:
    wrong = "wrong-token-0123456789"
    with captured_logs() as logs:
        server = serve()
        with httpx.Client(base_url=server.url.rstrip("/"), headers=HTML, timeout=15) as client:
            csrf = _csrf(client.get("/login").text)
            for _ in range(5):
                r = client.post("/login", data={"token": wrong, "csrf_token": csrf})
                assert r.status_code == 401
            r = client.post("/login", data={"token": wrong, "csrf_token": csrf})
            assert r.status_code == 429
            assert int(r.headers["retry-after"]) >= 1
            # While locked out even the right token is refused: guessing learns nothing.
            r = client.post("/login", data={"token": ADMIN_TOKEN, "csrf_token": csrf})
            assert r.status_code == 429
            assert "pgjobs_session" not in r.cookies
        # Another client is not locked out.
        with httpx.Client(base_url=server.url.rstrip("/"), headers=HTML, timeout=15) as other:
            csrf = _csrf(other.get("/login", headers=ELSEWHERE).text)
            r = other.post(
                "/login", data={"token": ADMIN_TOKEN, "csrf_token": csrf}, headers=ELSEWHERE
            )
            assert r.status_code == 303
    failed = [e for e in logs if e["event"] == "dashboard.auth_failed"]
    assert [(e["via"], e["client"], e["failures"]) for e in failed] == [
        ("form", "127.0.0.1", n) for n in range(1, 6)
    ]
    assert failed[-1]["locked_for"] >= 1
    assert [e["via"] for e in logs if e["event"] == "dashboard.auth_throttled"] == ["form"] * 2
    assert wrong not in repr(logs)
    assert ADMIN_TOKEN not in repr(logs)


def test_failed_bearer_tokens_are_logged_and_lock_the_client_out(serve: Any) -> None:
    bad = {"Authorization": "Bearer guessed-token-0123456789"}
    with captured_logs() as logs:
        server = serve()
        base = server.url.rstrip("/")
        with logged_in(server, ADMIN_TOKEN) as browser:
            with httpx.Client(base_url=base, timeout=15) as api:
                for _ in range(5):
                    assert api.get("/api/v1/jobs", headers=bad).status_code == 401
                r = api.get("/api/v1/jobs", headers=bad)
                assert r.status_code == 429
                assert int(r.headers["retry-after"]) >= 1
                assert r.json()["error"]["retry_after"] == int(r.headers["retry-after"])
                assert api.get("/api/v1/jobs", headers=ADMIN).status_code == 429
                assert api.get("/api/v1/jobs", headers={**ADMIN, **ELSEWHERE}).status_code == 200
            # A session already open is not locked out with its address.
            assert browser.get("/jobs").status_code == 200
    failed = [e for e in logs if e["event"] == "dashboard.auth_failed"]
    assert [(e["via"], e["client"]) for e in failed] == [("bearer", "127.0.0.1")] * 5
    assert "guessed-token" not in repr(logs)
    assert ADMIN_TOKEN not in repr(logs)


def test_the_limiter_doubles_the_lockout_and_forgets_on_success() -> None:
    now = [1000.0]
    limiter = _auth.FailureLimiter(
        threshold=3, first_lock=10, max_lock=35, window=100, clock=lambda: now[0]
    )
    assert [limiter.failed("a") for _ in range(2)] == [(1, 0.0), (2, 0.0)]
    assert limiter.retry_after("a") == 0
    assert limiter.failed("a") == (3, 10)
    assert limiter.retry_after("a") == 10
    assert limiter.retry_after("b") == 0
    now[0] += 10.5
    assert limiter.failed("a") == (4, 20)
    now[0] += 21
    assert limiter.failed("a") == (5, 35)  # doubled to 40, capped at max_lock
    limiter.succeeded("a")
    assert limiter.retry_after("a") == 0
    assert limiter.failed("a") == (1, 0.0)
    now[0] += 101  # a window without failures: forgotten
    assert limiter.failed("a") == (1, 0.0)


@pytest.mark.parametrize(
    "secret",
    ["a" * 16, "abababababababababab", "abcabcabcabcabcabc", "aaaaaaaaaaaaaaaa-7f3k9q"],
)
def test_obviously_weak_tokens_are_refused_at_load(secret: str) -> None:
    from pgjobs.web import create_app
    from tests.web.app import app

    with pytest.raises(ConfigurationError, match="too easy to guess") as caught:
        create_app(app, tokens=f"admin:{secret}")
    assert _auth.TOKEN_RULE in str(caught.value)
    assert secret not in str(caught.value)


# -- 8: sessions: logout revokes, CSRF tokens belong to one session, Secure behind TLS ---


def test_logout_revokes_a_copied_session_cookie(server: Any) -> None:
    with logged_in(server, ADMIN_TOKEN) as client:
        page = client.get("/jobs")
        assert page.status_code == 200
        copied = client.cookies["pgjobs_session"]
        r = client.post("/logout", data={"csrf_token": _csrf(page.text)})
        assert r.status_code == 303
    cookie = {"Cookie": f"pgjobs_session={copied}"}
    r = httpx.get(server.url + "jobs", headers={**HTML, **cookie}, timeout=15)
    assert r.status_code == 303
    assert "/login" in r.headers["location"]
    assert httpx.get(server.url + "api/v1/jobs", headers=cookie, timeout=15).status_code == 401


def test_a_csrf_token_works_only_in_its_own_session(server: Any, conn: Conn) -> None:
    job = insert_job(conn, status="failed")
    with logged_in(server, ADMIN_TOKEN) as a, logged_in(server, ADMIN_TOKEN) as b:
        a_token = _csrf(a.get(f"/jobs/{job}").text)
        b_token = _csrf(b.get(f"/jobs/{job}").text)
        # A page on a sibling subdomain can plant cookies (cookie tossing): it gives
        # B the CSRF cookie and token an attacker got from their own session A.
        tossed = (
            f"pgjobs_session={b.cookies['pgjobs_session']}; pgjobs_csrf={a.cookies['pgjobs_csrf']}"
        )
        r = httpx.post(
            f"{server.url}jobs/{job}/retry",
            data={"csrf_token": a_token, "confirm": "yes"},
            headers={**HTML, "Cookie": tossed},
            timeout=15,
        )
        assert r.status_code == 403
        assert conn.execute("SELECT status FROM pgjobs.jobs WHERE id = %s", (job,)).fetchone() == (
            "failed",
        )
        r = b.post(f"/jobs/{job}/retry", data={"csrf_token": b_token, "confirm": "yes"})
        assert r.status_code == 303


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _cookie_attributes(response: Any, name: str) -> list[str]:
    for header in response.headers.get_list("set-cookie"):
        if header.startswith(f"{name}="):
            return [part.strip().lower() for part in header.split(";")[1:]]
    raise AssertionError(f"no {name} cookie set: {response.headers.get_list('set-cookie')}")


def test_cookies_are_secure_behind_a_tls_proxy_with_proxy_headers(dsn: str) -> None:
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PGJOBS_DASHBOARD")}
    env.update(PGJOBS_DSN=dsn, PYTHONPATH=str(REPO), PGJOBS_DASHBOARD_TOKENS=f"admin:{ADMIN_TOKEN}")
    command = [sys.executable, "-m", "pgjobs", "dashboard", "tests.web.app:app"]
    proc = subprocess.Popen(
        [*command, "--bind", f"127.0.0.1:{port}", "--proxy-headers"],
        env=env,
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(f"{base}/healthz", timeout=2)
                break
            except httpx.TransportError:
                assert proc.poll() is None, proc.communicate()[0].decode()
                assert time.monotonic() < deadline, "the dashboard did not start"
                time.sleep(0.1)
        tls = {**HTML, "X-Forwarded-Proto": "https"}
        page = httpx.get(f"{base}/login", headers=tls, timeout=15)
        assert "secure" in _cookie_attributes(page, "pgjobs_csrf")
        visitor = page.cookies["pgjobs_csrf"]
        r = httpx.post(
            f"{base}/login",
            data={"token": ADMIN_TOKEN, "csrf_token": _csrf(page.text)},
            headers={**tls, "Cookie": f"pgjobs_csrf={visitor}"},
            timeout=15,
        )
        assert r.status_code == 303
        assert "secure" in _cookie_attributes(r, "pgjobs_session")
        # Plain HTTP through the same proxy: not Secure, or the browser would drop it.
        plain = httpx.get(f"{base}/login", headers=HTML, timeout=15)
        assert "secure" not in _cookie_attributes(plain, "pgjobs_csrf")
    finally:
        proc.terminate()
        proc.communicate(timeout=20)


# -- 9: --insecure: the banner says what it does ---------------------------------------


def test_insecure_without_tokens_says_anyone_who_reaches_it_is_admin(serve: Any) -> None:
    server = serve(tokens="", insecure=True)
    r = httpx.get(server.url + "queues", headers={**HTML, **ELSEWHERE}, timeout=15)
    assert r.status_code == 200  # from another machine: admin, as the banner says
    assert "anyone who can reach this address has admin rights" in r.text
    assert "anyone on this machine" not in r.text


def test_without_insecure_the_banner_says_this_machine_only(serve: Any) -> None:
    server = serve(tokens="")
    r = httpx.get(server.url + "queues", headers=HTML, timeout=15)
    assert "anyone on this machine has admin rights here; other machines are refused" in r.text
    r = httpx.get(server.url + "queues", headers={**HTML, **ELSEWHERE}, timeout=15)
    assert r.status_code == 403
