"""Cross-site request forgery in a real headless Chromium: a page on a sibling subdomain posts
`text/plain` forms whose bodies parse as JSON to the API of a dashboard an admin is logged in to.

Two host names resolve to 127.0.0.1 inside Chromium only (--host-resolver-rules): the
dashboard at dash.example.com and the attacker's page at evil.example.com. They are the
same site, so Chromium sends the SameSite=Lax session cookie with the forms' POSTs; the
page's no-referrer policy makes their Origin `null`. Uses Debian's chromium, as test_e2e does.
"""

from __future__ import annotations

import html
import http.server
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

pytest.importorskip("starlette", reason="the web extra is not installed: pip install 'pgjobs[web]'")
sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
httpx = pytest.importorskip("httpx", reason="the web extra is not installed")

from tests.web.conftest import ADMIN, ADMIN_TOKEN, insert_job  # noqa: E402
from tests.web.test_e2e import ARGS, CHROMIUM  # noqa: E402

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"no Chromium at {CHROMIUM}"),
]

RESOLVE = "--host-resolver-rules=MAP dash.example.com 127.0.0.1, MAP evil.example.com 127.0.0.1"


def _evil_page(dash: str, job: int) -> str:
    """Four forms; each text/plain body is `name=value`, which together make JSON."""
    forms = [
        ("enqueue", "/api/v1/jobs", '{"task": "noop", "fingerprint": "', 'forged"}'),
        ("cancel", f"/api/v1/jobs/{job}/cancel", '{"x": "', '"}'),
        # A duplicate key swallows the `=`: the last "queue" wins in a lenient parser.
        ("bulk-cancel", "/api/v1/jobs/cancel-queued", '{"queue": "', '", "queue": "emails"}'),
        ("pause", "/api/v1/queues/emails/pause", '{"x": "', '"}'),
    ]
    body = "".join(
        f'<form id="{name}" method="post" enctype="text/plain" action="{dash}{path}">'
        f'<input type="hidden" name="{html.escape(field)}" value="{html.escape(value)}">'
        f"<button>{name}</button></form>"
        for name, path, field, value in forms
    )
    return (
        '<!doctype html><html><head><meta name="referrer" content="no-referrer">'
        f"<title>win a prize</title></head><body>{body}</body></html>"
    )


@pytest.fixture
def evil_site() -> Iterator[tuple[str, dict[str, str]]]:
    """The attacker's web server on loopback: its base URL, and the page it serves (settable)."""
    content = {"page": ""}

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            data = content["page"].encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://evil.example.com:{server.server_address[1]}/", content
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def browser() -> Any:
    with sync_api.sync_playwright() as p:
        launched = p.chromium.launch(executable_path=CHROMIUM, args=[*ARGS, RESOLVE], headless=True)
        yield launched
        launched.close()


def _state(dsn: str, job: int) -> tuple[int, str]:
    with psycopg.connect(dsn) as conn:
        count = conn.execute("SELECT count(*) FROM pgjobs.jobs").fetchone()
        status = conn.execute("SELECT status::text FROM pgjobs.jobs WHERE id = %s", (job,))
        found = status.fetchone()
    assert count is not None
    assert found is not None
    return int(count[0]), str(found[0])


def test_a_sibling_subdomain_cannot_make_a_logged_in_admin_change_anything(
    server: Any, browser: Any, evil_site: tuple[str, dict[str, str]], dsn: str, conn: Any
) -> None:
    port = server.url.rstrip("/").rsplit(":", 1)[1]
    dash = f"http://dash.example.com:{port}"
    job = insert_job(conn, status="queued", queue="emails")
    insert_job(conn, status="queued", queue="emails")
    evil_url, evil = evil_site
    evil["page"] = _evil_page(dash, job)
    before = _state(dsn, job)

    page = browser.new_context().new_page()
    violations: list[str] = []
    page.on(
        "console",
        lambda m: violations.append(m.text) if "Content Security Policy" in m.text else None,
    )
    page.goto(dash + "/")
    assert "/login" in page.url
    page.fill("input[name=token]", ADMIN_TOKEN)
    page.click("button:has-text('Log in')")
    page.wait_for_url(dash + "/")
    page.goto(f"{dash}/jobs/{job}")
    page.wait_for_selector("#job-args")
    # Without the script's dialog the server asks; "No, go back" (static script, not an
    # inline javascript: URL) returns to the job, which is left as it was.
    cancel = page.locator("form:has(button:has-text('Cancel'))")
    cancel.evaluate("f => f.removeAttribute('data-confirm')")
    cancel.locator("button").click()
    page.wait_for_selector(f"text=Cancel job {job}?")
    page.click("#go-back")
    page.wait_for_url(f"{dash}/jobs/{job}")
    assert violations == []  # the dashboard's own pages run under its CSP unharmed

    for form in ("enqueue", "cancel", "bulk-cancel", "pause"):
        page.goto(evil_url)
        with page.expect_response(lambda r: "/api/v1/" in r.url) as answer:
            page.click(f"#{form} button")
        response = answer.value
        sent = response.request.all_headers()
        # The attack as found: the cookie went along, with no usable Origin.
        assert "pgjobs_session=" in sent.get("cookie", ""), (form, sent)
        assert sent.get("origin") == "null", (form, sent)
        assert response.status in (403, 415), (form, response.status, response.text())
        assert _state(dsn, job) == before, form

    queues = httpx.get(server.url + "api/v1/queues", headers=ADMIN, timeout=15).json()["queues"]
    assert not any(q["name"] == "emails" and q["paused"] for q in queues)
