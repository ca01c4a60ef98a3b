"""The dashboard's authentication under attack: retargeted buttons, redaction, brute force,
sessions and --insecure, over real HTTP (and the `dashboard` command as a subprocess)."""

from __future__ import annotations

import json
import posixpath
import re
import urllib.parse
from typing import Any

import psycopg
import pytest

pytest.importorskip("starlette", reason="the web extra is not installed: pip install 'pgjobs[web]'")
httpx = pytest.importorskip("httpx", reason="the web extra is not installed")

from pgjobs.errors import ConfigurationError  # noqa: E402
from pgjobs.web import _auth  # noqa: E402
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
        (action,) = _actions(page, "zz")
        path = _browser_path(action)
        assert path == "/queues/zz%2F..%2Femails/pause", action
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
        (action,) = _actions(page, "zz")
        path = _browser_path(action)
        assert path == "/schedules/zz%2F..%2Fnightly/run", action
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
