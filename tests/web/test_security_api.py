"""The dashboard as an attacker probes it over HTTP: CSRF through the session cookie, content
types, duplicate keys, lone surrogates, the Host header, and the security headers."""

from __future__ import annotations

import contextlib
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

pytest.importorskip("starlette", reason="the web extra is not installed: pip install 'pgjobs[web]'")
httpx = pytest.importorskip("httpx", reason="the web extra is not installed")

from tests.conftest import REPO  # noqa: E402
from tests.web.conftest import ADMIN, ADMIN_TOKEN, insert_job  # noqa: E402

Conn = psycopg.Connection[Any]
JSON = {"Content-Type": "application/json"}
HTML = {"Accept": "text/html"}


@contextlib.contextmanager
def logged_in(server: Any, **headers: str) -> Iterator[tuple[Any, str]]:
    """A client holding an admin's session cookie (from the login form), and its CSRF token."""
    with httpx.Client(base_url=server.url.rstrip("/"), headers=HTML, timeout=15) as client:
        csrf = _csrf(client.get("/login").text)
        r = client.post(
            "/login",
            data={"token": ADMIN_TOKEN, "csrf_token": csrf, "next": "/"},
            headers=headers,
        )
        assert r.status_code == 303, r.text
        yield client, _csrf(client.get("/jobs").text)


def _csrf(page: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert found is not None
    return found.group(1)


def _origin(server: Any) -> str:
    return server.url.rstrip("/")


def _count(conn: Conn) -> int:
    row = conn.execute("SELECT count(*) FROM pgjobs.jobs").fetchone()
    assert row is not None
    return int(row[0])


def _status(conn: Conn, job: int) -> str:
    row = conn.execute("SELECT status::text FROM pgjobs.jobs WHERE id = %s", (job,)).fetchone()
    assert row is not None
    return str(row[0])


def _paused(server: Any, queue: str) -> bool:
    r = httpx.get(server.url + "api/v1/queues", headers=ADMIN, timeout=15)
    return any(q["name"] == queue and q["paused"] for q in r.json()["queues"])


# -- CSRF through the session cookie --------------------------------------------


def test_a_cross_site_text_plain_form_with_the_cookie_changes_nothing(
    server: Any, conn: Conn
) -> None:
    """What a page on a sibling subdomain made a logged-in admin's browser send."""
    queued = insert_job(conn, status="queued", queue="emails")
    insert_job(conn, status="queued", queue="emails")
    before = _count(conn)
    forged = {"Content-Type": "text/plain", "Origin": "null"}
    with logged_in(server) as (client, _):
        attempts = [
            ("/api/v1/jobs", '{"task": "noop", "fingerprint": "=x"}'),
            (f"/api/v1/jobs/{queued}/cancel", '{"x": "="}'),
            ("/api/v1/jobs/cancel-queued", '{"queue": "=", "queue": "emails"}'),
            ("/api/v1/queues/emails/pause", '{"x": "="}'),
        ]
        for path, body in attempts:
            r = client.post(path, content=body, headers=forged)
            assert r.status_code in (403, 415), (path, r.status_code, r.text)
        # The same without any Origin header (a browser that sends none).
        r = client.post("/api/v1/jobs", content='{"task": "noop"}', headers=JSON)
        assert r.status_code == 403, r.text
        assert "X-CSRF-Token" in r.json()["error"]["message"]
    assert _count(conn) == before
    assert _status(conn, queued) == "queued"
    assert not _paused(server, "emails")


def test_cookie_api_calls_need_the_exact_origin_and_the_csrf_header(
    server: Any, conn: Conn
) -> None:
    origin = _origin(server)
    with logged_in(server) as (client, csrf):
        sibling = {**JSON, "Origin": "http://evil.127.0.0.1.nip.io", "X-CSRF-Token": csrf}
        null = {**JSON, "Origin": "null", "X-CSRF-Token": csrf}
        no_token = {**JSON, "Origin": origin}
        wrong_token = {**JSON, "Origin": origin, "X-CSRF-Token": "not-the-token"}
        for headers in (sibling, null, no_token, wrong_token):
            r = client.post("/api/v1/queues/emails/pause", headers=headers)
            assert r.status_code == 403, (headers, r.text)
            assert not _paused(server, "emails")
        # From the dashboard's own origin, with its token: allowed.
        r = client.post(
            "/api/v1/jobs", json={"task": "noop"}, headers={"Origin": origin, "X-CSRF-Token": csrf}
        )
        assert r.status_code == 201, r.text
        assert r.json()["meta"]["submitted_by"] == "alice"
        # Reading needs neither.
        assert client.get("/api/v1/jobs").status_code == 200


def test_without_tokens_a_null_origin_may_not_change_anything(serve: Any, conn: Conn) -> None:
    server = serve(tokens="")
    before = _count(conn)
    for headers in ({"Origin": "null"}, {"Origin": "http://evil.example:8080"}):
        for content_type in ("text/plain", "application/json"):
            r = httpx.post(
                server.url + "api/v1/jobs",
                content='{"task": "noop"}',
                headers={**headers, "Content-Type": content_type},
                timeout=15,
            )
            assert r.status_code in (403, 415), (headers, content_type, r.text)
    assert _count(conn) == before
    # Tools (no Origin header) and the dashboard's own pages still may.
    ok = httpx.post(server.url + "api/v1/jobs", json={"task": "noop"}, timeout=15)
    assert ok.status_code == 201
    r = httpx.post(
        server.url + "api/v1/jobs",
        json={"task": "noop"},
        headers={"Origin": _origin(server)},
        timeout=15,
    )
    assert r.status_code == 201


# -- content types and duplicate keys -------------------------------------------------


@pytest.mark.parametrize(
    "content_type",
    [None, "text/plain", "application/x-www-form-urlencoded", "multipart/form-data; b=x", "json"],
)
def test_bodies_not_sent_as_json_are_415(
    server: Any, http: Any, conn: Conn, content_type: str | None
) -> None:
    job = insert_job(conn, status="queued")
    headers = {**ADMIN, "Content-Type": content_type or ""}
    if content_type is None:
        del headers["Content-Type"]
    for path in ("/api/v1/jobs", "/api/v1/jobs/retry-failed", "/api/v1/jobs/cancel-queued"):
        r = http.post(path, content=b'{"task": "noop", "queue": "default"}', headers=headers)
        assert r.status_code == 415, (path, r.text)
        assert "application/json" in r.json()["error"]["message"]
    for path in (f"/api/v1/jobs/{job}/cancel", "/api/v1/queues/default/pause"):
        r = http.post(path, content=b'{"x": 1}', headers=headers)
        assert r.status_code == 415, (path, r.text)
    assert _status(conn, job) == "queued"
    assert not _paused(server, "default")


def test_json_with_a_charset_and_bodiless_actions_still_work(http: Any, conn: Conn) -> None:
    job = insert_job(conn, status="queued")
    r = http.post(
        "/api/v1/jobs",
        content=b'{"task": "noop"}',
        headers={**ADMIN, "Content-Type": "Application/JSON; charset=utf-8"},
    )
    assert r.status_code == 201, r.text
    assert http.post(f"/api/v1/jobs/{job}/cancel", headers=ADMIN).status_code == 200
    # An action that takes no body refuses a form's Content-Type even when empty.
    r = http.post(
        f"/api/v1/jobs/{job}/retry",
        headers={**ADMIN, "Content-Type": "application/x-www-form-urlencoded"},
    )
    assert r.status_code == 415
    assert _status(conn, job) == "cancelled"


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/api/v1/jobs", b'{"task": "noop", "queue": "a", "queue": "b"}'),
        ("/api/v1/jobs", b'{"task": "noop", "args": {"n": 1, "n": 2}}'),
        ("/api/v1/jobs/cancel-queued", b'{"queue": "zz", "queue": "default"}'),
        ("/api/v1/jobs/retry-failed", b'{"task": "zz", "task": "fragile"}'),
    ],
)
def test_duplicate_keys_are_400(http: Any, conn: Conn, path: str, body: bytes) -> None:
    job = insert_job(conn, status="queued")
    before = _count(conn)
    r = http.post(path, content=body, headers={**ADMIN, **JSON})
    assert r.status_code == 400, r.text
    assert "appears twice" in r.json()["error"]["message"]
    assert _count(conn) == before
    assert _status(conn, job) == "queued"  # the bulk cancel did not run


# -- strings that are not text, and values Python cannot read ---------------------------


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/api/v1/jobs", rb'{"task": "noop", "queue": "\ud800"}'),
        ("/api/v1/jobs", rb'{"task": "noop", "fingerprint": "\ud800"}'),
        ("/api/v1/jobs", rb'{"task": "noop", "fingerprint": "a\udfffb"}'),
        ("/api/v1/jobs", rb'{"task": "no\ud800op"}'),
        ("/api/v1/jobs", rb'{"task": "noop", "args": {"n": "\ud800"}}'),
        ("/api/v1/jobs", rb'{"task": "noop", "args": {"\ud800": 1}}'),
        ("/api/v1/jobs", rb'{"task": "noop", "args": {"n": ["\udc00"]}}'),
        ("/api/v1/jobs/retry-failed", rb'{"queue": "\ud800"}'),
        ("/api/v1/jobs/retry-failed", rb'{"task": "\ud800"}'),
        ("/api/v1/jobs/cancel-queued", rb'{"queue": "\ud800"}'),
        ("/api/v1/jobs/cancel-queued", rb'{"queue": "x", "task": "\udbff"}'),
    ],
)
def test_lone_surrogates_in_bodies_are_400_and_the_connection_lives_on(
    http: Any, path: str, body: bytes
) -> None:
    r = http.post(path, content=body, headers={**ADMIN, **JSON})
    assert r.status_code == 400, r.text
    assert "surrogate" in r.json()["error"]["message"]
    # The same keep-alive connection answers the next request.
    assert http.get("/api/v1/queues", headers=ADMIN).status_code == 200


def test_a_valid_surrogate_pair_is_text(http: Any) -> None:
    r = http.post(
        "/api/v1/jobs",
        content=rb'{"task": "noop", "queue": "q\ud83d\ude00"}',
        headers={**ADMIN, **JSON},
    )
    assert r.status_code == 201, r.text
    assert r.json()["queue"] == "q\U0001f600"
    # Refused before: NaN is not JSON, and a 5,000-digit integer is more than Python reads.
    for body in (b'{"task": "noop", "args": {"n": NaN}}', b'{"task": "noop", "args": {"n": 1%s}}'):
        body = body.replace(b"%s", b"0" * 5000)
        r = http.post("/api/v1/jobs", content=body, headers={**ADMIN, **JSON})
        assert r.status_code == 400, r.text


@pytest.mark.parametrize(
    "url",
    [
        "/api/v1/jobs?queue=%ED%A0%80",
        "/api/v1/jobs?fingerprint=%ED%A0%80",
        "/api/v1/jobs?task=%FF",
        "/api/v1/queues/%ED%A0%80/pause",
        "/api/v1/schedules/%ED%A0%80/run",
        "/jobs?q=%ED%A0%80",
    ],
)
def test_urls_that_are_not_utf8_are_400(http: Any, url: str) -> None:
    r = http.request("POST" if url.endswith(("pause", "run")) else "GET", url, headers=ADMIN)
    assert r.status_code == 400, r.text
    assert "UTF-8" in r.json()["error"]["message"]
    assert http.get("/api/v1/queues", headers=ADMIN).status_code == 200


# -- the Host header --------------------------------------------------------------


def test_redirects_never_name_the_host_header(server: Any, conn: Conn) -> None:
    evil = {"Host": "evil.example"}
    job = insert_job(conn, status="failed")
    with httpx.Client(base_url=server.url.rstrip("/"), headers=HTML, timeout=15) as http:
        r = http.get("/jobs", headers=evil)
        assert r.status_code == 303
        assert r.headers["location"] == "/login?next=%2Fjobs"
    with logged_in(server, **evil) as (client, csrf):
        r = client.post(
            f"/jobs/{job}/retry", data={"csrf_token": csrf, "confirm": "yes"}, headers=evil
        )
        assert r.status_code == 303
        assert r.headers["location"] == f"/jobs/{job}?done=retried&n="
        r = client.get(f"/jobs?q={job}", headers=evil)
        assert r.headers["location"] == f"/jobs/{job}"
        r = client.get("/jobs?q=99999999", headers=evil)
        assert r.headers["location"].startswith("/jobs?done=not_found")
        page = client.get("/jobs", headers=evil).text
        assert "evil.example" not in page
    r = httpx.get(server.url + "api/v1/openapi.json", headers=evil, timeout=15)
    assert r.json()["servers"] == [{"url": "/"}]


def test_login_redirect_is_a_path_whatever_the_host(server: Any) -> None:
    with httpx.Client(base_url=server.url.rstrip("/"), headers=HTML, timeout=15) as client:
        csrf = _csrf(client.get("/login").text)
        r = client.post(
            "/login",
            data={"token": ADMIN_TOKEN, "csrf_token": csrf, "next": "//evil.example/x"},
            headers={"Host": "evil.example"},
        )
        assert r.status_code == 303
        assert r.headers["location"] == "/"


def test_allowed_hosts_refuse_other_host_headers(serve: Any) -> None:
    server = serve(allowed_hosts="dash.example.com, *.internal.example")
    port = server.url.rsplit(":", 1)[1].strip("/")
    for host in ("dash.example.com", f"dash.example.com:{port}", "a.b.internal.example"):
        r = httpx.get(server.url + "healthz", headers={"Host": host}, timeout=15)
        assert r.status_code == 200, (host, r.text)
    for host in ("127.0.0.1", f"127.0.0.1:{port}", "evil.example", "internal.example", ""):
        r = httpx.get(server.url + "api/v1/jobs", headers={**ADMIN, "Host": host}, timeout=15)
        assert r.status_code == 400, (host, r.text)
        assert "allowed hosts" in r.json()["error"]["message"]
        assert r.headers["x-frame-options"] == "DENY"


def test_allowed_hosts_must_be_host_names(serve: Any) -> None:
    from pgjobs.errors import ConfigurationError

    for bad in ("", "http://dash.example.com", "dash.example.com:8080", "a/b"):
        with pytest.raises(ConfigurationError, match="allowed hosts"):
            serve(allowed_hosts=bad)


def test_the_dashboard_command_takes_allowed_hosts(dsn: str) -> None:
    import os
    import socket
    import time

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    env = {k: v for k, v in os.environ.items() if not k.startswith("PGJOBS_DASHBOARD")}
    env.update(PGJOBS_DSN=dsn, PYTHONPATH=str(REPO))
    command = [sys.executable, "-m", "pgjobs", "dashboard", "tests.web.app:app"]
    command += ["--bind", f"127.0.0.1:{port}", "--allowed-hosts", "localhost"]
    proc = subprocess.Popen(command, env=env, cwd=REPO, stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}/healthz"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                ok = httpx.get(url, headers={"Host": "localhost"}, timeout=5)
                break
            except httpx.TransportError:
                assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
                assert time.monotonic() < deadline, "the dashboard did not start"
                time.sleep(0.1)
        assert ok.status_code == 200
        assert httpx.get(url, timeout=5).status_code == 400  # Host: 127.0.0.1:PORT
    finally:
        proc.terminate()
        proc.communicate(timeout=30)


# -- security headers ------------------------------------------------------------


def test_every_answer_has_the_security_headers(server: Any, conn: Conn) -> None:
    job = insert_job(conn, status="failed")
    with logged_in(server) as (client, _):
        answers = [
            client.get("/"),
            client.get(f"/jobs/{job}"),
            client.get("/login"),
            client.get("/no-such-page"),
            client.get("/api/v1/jobs", headers=ADMIN),
            client.get("/api/v1/jobs/abc", headers=ADMIN),
            client.get("/api/v1/openapi.json"),
            client.get("/healthz"),
        ]
        static = client.get("/static/live.js")
    for r in [*answers, static]:
        csp = r.headers["content-security-policy"]
        assert "script-src 'self'" in csp, r.url
        assert "frame-ancestors 'none'" in csp
        assert "unsafe-inline" not in csp
        assert r.headers["x-frame-options"] == "DENY"
        assert r.headers["x-content-type-options"] == "nosniff"
        assert r.headers["referrer-policy"] == "same-origin"
    for r in answers:
        assert r.headers["cache-control"] == "no-store", r.url
    assert static.status_code == 200
    assert "no-store" not in static.headers.get("cache-control", "")


def test_templates_have_no_inline_script() -> None:
    """What the Content-Security-Policy would block: inline scripts, handlers, javascript: URLs."""
    templates = Path(REPO, "pgjobs", "web", "templates")
    for path in templates.glob("*.html"):
        text = path.read_text(encoding="utf-8")
        assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", text), path.name
        assert not re.search(r"\son[a-z]+\s*=", text, re.IGNORECASE), path.name
        assert "javascript:" not in text.lower(), path.name
        assert "style=" not in text, path.name


# -- the pure parts ----------------------------------------------------------------


def test_origin_matching_is_exact() -> None:
    from pgjobs.web._http import same_origin

    assert same_origin("http://dash.example.com", "dash.example.com", "http")
    assert same_origin("https://dash.example.com:8443", "DASH.example.com:8443", "http")
    assert not same_origin("http://dash.example.com", "dash.example.com", "https")
    for origin in ("null", "", "http://evil.example.com", "http://dash.example.com:81", "x"):
        assert not same_origin(origin, "dash.example.com", "http"), origin
    assert not same_origin("http://", "", "http")


def test_host_names_match_the_allowed_list() -> None:
    from pgjobs.web._http import host_allowed, parse_allowed_hosts

    allowed = parse_allowed_hosts("Dash.Example.com,*.example.org,[::1]")
    assert allowed == ("dash.example.com", "*.example.org", "[::1]")
    for host in ("dash.example.com", "DASH.example.com:8080", "a.example.org", "[::1]:80"):
        assert host_allowed(host, allowed), host
    for host in ("example.org", "evil.example.com", "dash.example.com.evil", "", "[::2]"):
        assert not host_allowed(host, allowed), host
    assert host_allowed("anything", parse_allowed_hosts(["*"]))
