"""Pages over real HTTP: login, CSRF on form posts, confirmations, bulk actions, bad input."""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("starlette", reason="the web extra is not installed: pip install 'pgjobs[web]'")
httpx = pytest.importorskip("httpx", reason="the web extra is not installed")

from tests.web.conftest import ADMIN_TOKEN, VIEWER_TOKEN, insert_job  # noqa: E402

HTML = {"Accept": "text/html"}


@contextlib.contextmanager
def logged_in(server: Any, token: str) -> Iterator[Any]:
    """A client holding the session cookie of a login with `token`."""
    with httpx.Client(base_url=server.url.rstrip("/"), headers=HTML, timeout=15) as client:
        csrf = _csrf(client.get("/login").text)
        r = client.post("/login", data={"token": token, "csrf_token": csrf, "next": "/jobs"})
        assert r.status_code == 303
        assert r.headers["location"] == "/jobs"
        yield client


def _csrf(page: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert found is not None
    return found.group(1)


def test_pages_need_a_login_and_a_bad_token_is_refused(server: Any, http: Any) -> None:
    r = http.get("/jobs", headers=HTML)
    assert r.status_code == 303
    assert r.headers["location"].endswith("/login?next=%2Fjobs")
    csrf = _csrf(http.get("/login").text)
    r = http.post("/login", data={"token": "wrong-token-0123456789", "csrf_token": csrf})
    assert r.status_code == 401
    assert "not configured" in r.text


def test_form_posts_need_the_csrf_token_and_a_confirmation(server: Any, conn: Any) -> None:
    job = insert_job(conn, status="failed")
    with logged_in(server, ADMIN_TOKEN) as client:
        page = client.get(f"/jobs/{job}").text
        assert "Traceback" not in page  # no errors recorded on this row
        csrf = _csrf(page)
        r = client.post(f"/jobs/{job}/retry", data={"confirm": "yes"})
        assert r.status_code == 403
        r = client.post(
            f"/jobs/{job}/retry",
            data={"csrf_token": csrf, "confirm": "yes"},
            headers={"Origin": "https://evil.example"},
        )
        assert r.status_code == 403
        r = client.post(f"/jobs/{job}/retry", data={"csrf_token": csrf})
        assert r.status_code == 200
        assert f"Retry job {job}?" in r.text  # the confirmation page, nothing done yet
        assert conn.execute("SELECT status FROM pgjobs.jobs WHERE id = %s", (job,)).fetchone() == (
            "failed",
        )
        r = client.post(f"/jobs/{job}/retry", data={"csrf_token": csrf, "confirm": "yes"})
        assert r.status_code == 303
        assert "done=retried" in r.headers["location"]
    assert conn.execute("SELECT status FROM pgjobs.jobs WHERE id = %s", (job,)).fetchone() == (
        "queued",
    )


def test_bulk_retry_and_cancel_from_the_jobs_page(server: Any, conn: Any) -> None:
    for _ in range(2):
        insert_job(conn, status="failed", task="fragile")
    with logged_in(server, ADMIN_TOKEN) as client:
        csrf = _csrf(client.get("/jobs").text)
        form = {"csrf_token": csrf, "confirm": "yes", "task": "fragile", "queue": ""}
        r = client.post("/jobs/bulk/retry-failed", data=form)
        assert "done=bulk_retried&n=2" in r.headers["location"]
        assert "Failed jobs retried: 2." in client.get(r.headers["location"]).text
        form = {"csrf_token": csrf, "confirm": "yes", "queue": "default"}
        r = client.post("/jobs/bulk/cancel-queued", data=form)
        assert "n=2" in r.headers["location"]


def test_viewer_sees_disabled_actions_and_is_refused(server: Any, conn: Any) -> None:
    job = insert_job(conn, status="failed")
    with logged_in(server, VIEWER_TOKEN) as client:
        page = client.get(f"/jobs/{job}").text
        assert 'disabled title="admin only"' in page
        r = client.post(f"/jobs/{job}/retry", data={"csrf_token": _csrf(page), "confirm": "yes"})
        assert r.status_code == 403


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/jobs/123456", 404),
        ("/jobs/abc", 400),
        ("/jobs?status=bogus", 400),
        ("/jobs?cursor=%%%", 400),
        ("/jobs?q=999999", 303),
        ("/?range=2h", 400),
        ("/no-such-page", 404),
    ],
)
def test_bad_page_input_is_4xx_html(server: Any, path: str, status: int) -> None:
    with logged_in(server, VIEWER_TOKEN) as client:
        r = client.get(path)
        assert r.status_code == status
        if status != 303:
            assert 'id="error-message"' in r.text


def test_every_page_renders_with_data(server: Any, conn: Any) -> None:
    insert_job(conn, status="failed", queue="mail")
    insert_job(conn, status="queued", queue="mail", run_at="2099-01-01T00:00:00Z")
    conn.execute("INSERT INTO pgjobs.queues (name, paused) VALUES ('mail', true)")
    conn.execute(
        "INSERT INTO pgjobs.schedules (name, expression, task) VALUES ('tick', '* * * * *', 'noop')"
    )
    with logged_in(server, ADMIN_TOKEN) as client:
        for path, needle in (
            ("/", "paused"),
            ("/jobs?status=scheduled", "scheduled"),
            ("/queues", "Resume"),
            ("/workers", "No workers registered"),
            ("/schedules", "Run now"),
        ):
            r = client.get(path)
            assert r.status_code == 200, path
            assert needle in r.text, path


def test_overview_chart_has_axes_a_range_a_filter_and_its_values_in_a_table(
    server: Any, conn: Any
) -> None:
    conn.execute(
        "INSERT INTO pgjobs.jobs (task, queue, status, finished_at)"
        " SELECT 'send', 'mail', 'succeeded', now() - interval '2 hours'"
        " FROM generate_series(1, 1234)"
    )
    insert_job(conn, status="failed", queue="mail", task="send", finished_at="now()")
    insert_job(conn, status="failed", queue="other", task="x", finished_at="now()")
    with logged_in(server, VIEWER_TOKEN) as client:
        hour = client.get("/").text
        assert "Finished jobs, last hour" in hour
        assert re.search(r'id="failed-total">2<', hour)
        assert 'id="chart-values"' in hour
        assert "<th>From (UTC)</th>" in hour
        assert hour.count('class="ok"/>') == 60  # one bar per minute
        day = client.get("/?range=24h&queue=mail").text
        assert "Finished jobs, last 24 hours · queue mail" in day
        assert re.search(r'id="succeeded-total">1,234<', day)
        assert re.search(r'id="failed-total">1<', day)
        assert '<text x="52" y="12" text-anchor="end">2,000</text>' in day  # the y axis' top
        assert day.count('class="ok"/>') == 24
        assert re.search(r'<td class="n">1,234</td><td class="n">0</td>', day)
        week = client.get("/?range=7d&task=x").text
        assert re.search(r'id="succeeded-total">0<', week)
        assert re.search(r'id="failed-total">1<', week)


@pytest.mark.parametrize(
    ("report", "bar", "text"),
    [
        ('{"done": 40, "total": 100, "message": "a <b>40</b>"}', True, "40/100 a &lt;b&gt;"),
        ('{"done": "<script>x</script>", "total": "y"}', False, "&lt;script&gt;x&lt;/script&gt;/y"),
        ('"written by hand"', False, None),
    ],
)
def test_progress_is_shown_escaped_and_a_bar_only_for_numbers(
    server: Any, conn: Any, report: str, bar: bool, text: str | None
) -> None:
    """A report written from SQL or another language may hold anything."""
    job_id = insert_job(conn, status="running", progress=report)
    with logged_in(server, ADMIN_TOKEN) as client:
        for path in ("/jobs", f"/jobs/{job_id}"):
            page = client.get(path)
            assert page.status_code == 200, path
            assert ("<progress" in page.text) is bar, path
            assert "<script>x" not in page.text
            assert "<b>40" not in page.text
            if text is not None:
                assert text in page.text, path


def test_queues_page_shows_limits_and_an_admin_changes_them_after_confirming(
    server: Any, conn: Any
) -> None:
    insert_job(conn, status="queued", queue="exports")
    insert_job(conn, status="running", queue="exports")
    conn.execute("INSERT INTO pgjobs.queues (name, concurrency) VALUES ('exports', 5)")
    form = {
        "concurrency": "3",
        "key_concurrency": "",
        "rate_limit": "100/m",
        "rate_burst": "",
        "key_rate_limit": "",
        "key_rate_burst": "",
    }
    with logged_in(server, VIEWER_TOKEN) as client:
        page = client.get("/queues").text
        # Running against the limit, and the limits; no form for a viewer.
        assert re.search(r"data-running>1 / 5<", page)
        assert "concurrency 5" in page
        assert "Edit limits" not in page
    with logged_in(server, ADMIN_TOKEN) as client:
        page = client.get("/queues").text
        assert 'action="/queues/exports/limits"' in page
        csrf = _csrf(page)
        r = client.post("/queues/exports/limits", data={**form, "csrf_token": csrf, "confirm": ""})
        assert r.status_code == 200
        assert "Set the limits of queue exports to concurrency 3, rate_limit 100/m?" in r.text
        assert conn.execute(
            "SELECT concurrency, rate_limit FROM pgjobs.queues WHERE name = 'exports'"
        ).fetchone() == (5, None)
        r = client.post(
            "/queues/exports/limits", data={**form, "csrf_token": csrf, "confirm": "yes"}
        )
        assert r.status_code == 303
        assert r.headers["location"].endswith("/queues?done=limits_set&n=")
        assert "Queue limits set" in client.get(r.headers["location"]).text
        assert conn.execute(
            "SELECT concurrency, rate_limit, paused FROM pgjobs.queues WHERE name = 'exports'"
        ).fetchone() == (3, "100/m", False)
        # A bad value is refused, naming it; nothing changes.
        bad = {**form, "concurrency": "many", "csrf_token": csrf, "confirm": "yes"}
        r = client.post("/queues/exports/limits", data=bad)
        assert r.status_code == 422
        assert "concurrency must be a positive integer" in r.text
        # Without the CSRF token, nothing either.
        r = client.post(
            "/queues/exports/limits", data={**form, "concurrency": "9", "confirm": "yes"}
        )
        assert r.status_code == 403
    assert conn.execute(
        "SELECT concurrency FROM pgjobs.queues WHERE name = 'exports'"
    ).fetchone() == (3,)


def test_pausing_an_unknown_queue_from_the_page_is_refused(server: Any, conn: Any) -> None:
    with logged_in(server, ADMIN_TOKEN) as client:
        csrf = _csrf(client.get("/queues").text)
        r = client.post("/queues/typo/pause", data={"csrf_token": csrf, "confirm": "yes"})
        assert r.status_code == 404
        assert "no queue named" in r.text
    assert conn.execute("SELECT count(*) FROM pgjobs.queues").fetchone() == (0,)


def test_queues_page_shows_circuit_breakers(server: Any, conn: Any) -> None:
    with logged_in(server, VIEWER_TOKEN) as client:
        assert "No task has a circuit breaker" in client.get("/queues").text
    trial = insert_job(conn, status="queued", task="fragile")
    conn.execute(
        "INSERT INTO pgjobs.task_breakers (task, failures, cooldown, state, consecutive_failures,"
        " trial_job_id) VALUES ('fragile', 3, 60, 'half_open', 3, %s)",
        [trial],
    )
    with logged_in(server, VIEWER_TOKEN) as client:
        page = client.get("/queues").text
    assert "half-open" in page
    assert "3 / 3" in page
    assert f'href="/jobs/{trial}"' in page


def test_the_job_page_shows_a_workflows_parents_and_dependents(server: Any, conn: Any) -> None:
    import pgjobs
    from pgjobs.testing import drain
    from tests.web.app import app, noop

    first, second, callback = (
        pgjobs.group([noop.job(1), noop.job(2)]).then(noop.job(3)).enqueue(app=app)
    )
    step_a, step_b = pgjobs.chain(noop.job(10), noop.job(11)).enqueue(app=app)

    def rows(page: str, kind: str) -> list[int]:
        return [int(i) for i in re.findall(rf'data-{kind}="(\d+)"', page)]

    with logged_in(server, VIEWER_TOKEN) as client:
        page = client.get(f"/jobs/{callback}").text
        assert rows(page, "parent") == [first, second]
        assert page.count("waited for") == 2
        assert rows(page, "dependent") == []
        page = client.get(f"/jobs/{first}").text
        assert rows(page, "dependent") == [callback]
        assert rows(page, "parent") == []
        assert f'href="/jobs/{callback}"' in page
        assert rows(client.get(f"/jobs/{step_b}").text, "parent") == [step_a]
        # A job outside any workflow has no such section.
        lone = noop.enqueue(7)
        assert 'id="workflow"' not in client.get(f"/jobs/{lone}").text
    drain(app)
    with logged_in(server, VIEWER_TOKEN) as client:
        # Finished, the dependents are found in the history, with their states.
        page = client.get(f"/jobs/{first}").text
        assert rows(page, "dependent") == [callback]
        assert "state-succeeded" in page.split('id="workflow"')[1].split("<h2>Args")[0]
        page = client.get(f"/jobs/{callback}").text
        assert rows(page, "parent") == [first, second]
        assert "waited for" not in page
        assert rows(client.get(f"/jobs/{step_a}").text, "dependent") == [step_b]


@pytest.mark.slow
def test_in_chromium_an_admin_sets_a_queues_limits_through_the_form(server: Any, conn: Any) -> None:
    """Click as a person would: open the form, type, confirm; the database has the limits."""
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    chromium = os.environ.get("PGJOBS_CHROMIUM", "/usr/bin/chromium")
    if not Path(chromium).exists():
        pytest.skip(f"no Chromium at {chromium}")
    insert_job(conn, status="queued", queue="exports")
    with sync_api.sync_playwright() as p:
        args = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run"]
        browser = p.chromium.launch(executable_path=chromium, args=args, headless=True)
        try:
            page = browser.new_page()
            page.goto(server.url + "login")
            page.fill("input[name=token]", ADMIN_TOKEN)
            page.click("button:has-text('Log in')")
            page.wait_for_url(server.url)
            page.goto(server.url + "queues")
            row = page.locator("tr", has_text="exports")
            row.locator("summary:has-text('Edit limits')").click()
            row.locator("input[name=concurrency]").fill("2")
            row.locator("input[name=rate_limit]").fill("30/m")
            row.locator("button:has-text('Set limits')").click()
            page.wait_for_selector("text=Set the limits of queue exports")
            page.click("button:has-text('Yes, do it')")
            page.wait_for_selector("text=Queue limits set")
            text = page.locator("tr", has_text="exports").inner_text()
        finally:
            browser.close()
    assert "concurrency 2" in text
    assert "rate 30/m" in text
    assert conn.execute(
        "SELECT concurrency, rate_limit FROM pgjobs.queues WHERE name = 'exports'"
    ).fetchone() == (2, "30/m")


def test_jobs_tabs_count_each_state_and_rows_say_what_happened(server: Any, conn: Any) -> None:
    err = '[{"attempt": 1, "type": "SMTPError", "message": "mailbox <full>", "at": "%s"}]'
    insert_job(conn, status="queued", queue="mail")
    insert_job(conn, status="queued", queue="mail", run_at="2099-01-01T00:00:00Z")
    retrying = insert_job(
        conn,
        status="queued",
        queue="mail",
        attempts=1,
        run_at="2099-01-02T03:04:05Z",
        errors=err % "2026-01-01T10:00:00+00:00",
    )
    running = insert_job(
        conn, status="running", queue="mail", started_at="2020-01-01T00:00:00Z", attempts=1
    )
    insert_job(conn, status="failed", queue="mail", errors=err % "2026-01-01T11:00:00+00:00")
    for _ in range(1200):
        insert_job(conn, status="succeeded", queue="other")
    with logged_in(server, VIEWER_TOKEN) as client:
        page = client.get("/jobs?queue=mail").text
        tabs = dict(re.findall(r'data-state="(\w+)">\w+ <span class="count">([^<]+)</span>', page))
        assert tabs == {
            "queued": "3",
            "scheduled": "1",
            "retrying": "1",
            "blocked": "0",
            "running": "1",
            "succeeded": "0",
            "failed": "1",
            "cancelled": "0",
        }
        assert "1,200" in client.get("/jobs").text  # thousands separators
        page = client.get("/jobs?status=retrying").text
        assert "next attempt <time" in page
        assert "2099-01-02 03:04:05" in page
        assert "<b>SMTPError</b>: mailbox &lt;full&gt;" in page
        assert "2026-01-01 10:00:00" in page
        page = client.get("/jobs?status=running").text
        assert re.search(r'class="small muted elapsed">for \d+d \d+h<', page)
        assert f">{running}</a>" in page
        assert f">{retrying}</a>" not in page
        page = client.get("/jobs?status=failed").text
        assert "2026-01-01 11:00:00" in page
        # Viewers get no checkboxes.
        assert 'name="ids"' not in page


def test_ticked_jobs_and_all_matching_are_retried_cancelled_and_deleted(
    server: Any, conn: Any
) -> None:
    failed = [insert_job(conn, status="failed", task="t", queue="q") for _ in range(3)]
    other = insert_job(conn, status="failed", task="t", queue="elsewhere")
    running = insert_job(conn, status="running", task="t", queue="q")

    def status(job: int) -> str | None:
        row = conn.execute("SELECT status::text FROM pgjobs.jobs WHERE id = %s", (job,)).fetchone()
        return row[0] if row else None

    with logged_in(server, ADMIN_TOKEN) as client:
        page = client.get("/jobs?status=failed&queue=q").text
        assert page.count('name="ids"') == 3
        csrf = _csrf(page)
        # Ticked: asks first, then retries those two only.
        form: dict[str, Any] = {"csrf_token": csrf, "ids": [str(failed[0]), str(failed[1])]}
        r = client.post("/jobs/selected/retry", data=form)
        assert r.status_code == 200
        assert "Retry 2 selected jobs?" in r.text
        assert r.text.count('name="ids"') == 2  # both ids carried by the confirmation
        r = client.post("/jobs/selected/retry", data={**form, "confirm": "yes"})
        assert r.status_code == 303
        assert "done=selected_retried&n=2" in r.headers["location"]
        assert [status(j) for j in failed] == ["queued", "queued", "failed"]
        # A running job is skipped by delete, not an error.
        form = {"csrf_token": csrf, "confirm": "yes", "ids": str(running)}
        r = client.post("/jobs/selected/delete", data=form)
        assert "n=0" in r.headers["location"]
        assert status(running) == "running"
        # All matching the failed tab of queue q: the third, not the other queue's.
        matching = {"csrf_token": csrf, "scope": "matching", "status": "failed", "queue": "q"}
        r = client.post("/jobs/selected/delete", data=matching)
        assert "Delete every failed job of queue q?" in r.text
        r = client.post("/jobs/selected/delete", data={**matching, "confirm": "yes"})
        assert "n=1" in r.headers["location"]
        assert status(failed[2]) is None
        assert status(other) == "failed"
        # Cancel all matching: every active job of the queue; refused on a finished tab.
        r = client.post("/jobs/selected/cancel", data={**matching, "confirm": "yes"})
        assert r.status_code == 400
        assert "use the All tab" in r.text
        cancel = {"csrf_token": csrf, "scope": "matching", "queue": "q", "confirm": "yes"}
        r = client.post("/jobs/selected/cancel", data=cancel)
        assert r.status_code == 303
        assert [status(j) for j in failed[:2]] == ["cancelled", "cancelled"]
        assert conn.execute(
            "SELECT cancel_requested_at IS NOT NULL FROM pgjobs.jobs WHERE id = %s", (running,)
        ).fetchone() == (True,)
        # A search cannot be acted on as a whole.
        r = client.post(
            "/jobs/selected/retry",
            data={**matching, "status": "cancelled", "args": '{"a": 1}', "confirm": "yes"},
        )
        assert r.status_code == 400
        assert "status, queue and task filters only" in r.text
    with logged_in(server, VIEWER_TOKEN) as client:
        csrf = _csrf(client.get("/jobs").text)
        r = client.post(
            "/jobs/selected/retry", data={"csrf_token": csrf, "ids": str(other), "confirm": "yes"}
        )
        assert r.status_code == 403


def test_job_page_shows_attempts_collapses_library_frames_and_enqueues_an_edited_copy(
    server: Any, conn: Any
) -> None:
    import json

    trace = (
        "Traceback (most recent call last):\n"
        '  File "/venv/lib/python3.11/site-packages/pgjobs/worker/_executor.py", line 1, in run\n'
        "    x()\n"
        '  File "/srv/app/jobs.py", line 3, in send\n'
        "    boom()\n"
        "RuntimeError: boom\n"
    )
    errors = [
        {
            "attempt": 1,
            "type": "RuntimeError",
            "message": "boom",
            "traceback": trace,
            "worker_id": 41,
            "started_at": "2026-01-01T10:00:00+00:00",
            "at": "2026-01-01T10:00:02.5+00:00",
        }
    ]
    job = insert_job(
        conn,
        status="succeeded",
        attempts=2,
        worker_id=42,
        started_at="2026-01-01T10:01:00Z",
        finished_at="2026-01-01T10:03:00Z",
        errors=json.dumps(errors),
        args='{"key": "a"}',
        queue="mail",
        priority=1,
    )
    with logged_in(server, ADMIN_TOKEN) as client:
        page = client.get(f"/jobs/{job}").text
        rows = re.findall(r"<tr><td class=\"n\">(\d)</td>.*?</tr>", page)
        assert rows == ["1", "2"]
        assert re.search(
            r'>41</td><td><time[^>]*>2026-01-01 10:00:00</time></td><td class="n">2.50s<', page
        )
        assert re.search(
            r'>42</td><td><time[^>]*>2026-01-01 10:01:00</time></td><td class="n">2m 0s<', page
        )
        assert '<details class="frames"><summary>1 library frame</summary>' in page
        assert "  File &#34;/srv/app/jobs.py&#34;, line 3, in send" in page
        csrf = _csrf(page)
        r = client.post(f"/jobs/{job}/copy", data={"csrf_token": csrf, "args": '{"to": "b@x"'})
        assert r.status_code == 400
        # Args that do not fit the task's signature are refused, as at enqueue.
        r = client.post(f"/jobs/{job}/copy", data={"csrf_token": csrf, "args": '{"to": "b"}'})
        assert r.status_code == 422
        r = client.post(f"/jobs/{job}/copy", data={"csrf_token": csrf, "args": '{"key": "b"}'})
        assert r.status_code == 303
        copy = int(re.search(r"/jobs/(\d+)\?done=copied", r.headers["location"]).group(1))
    row = conn.execute(
        "SELECT task, queue, priority, args, meta->>'copied_from', status::text"
        " FROM pgjobs.jobs WHERE id = %s",
        (copy,),
    ).fetchone()
    assert row == ("fragile", "mail", 1, {"key": "b"}, str(job), "queued")
    with logged_in(server, VIEWER_TOKEN) as client:
        page = client.get(f"/jobs/{job}").text
        assert "Edit args and enqueue a copy" not in page
        r = client.post(f"/jobs/{job}/copy", data={"csrf_token": _csrf(page), "args": "{}"})
        assert r.status_code == 403


def test_schedules_pause_resume_and_show_their_recent_runs(server: Any, conn: Any) -> None:
    conn.execute(
        "INSERT INTO pgjobs.schedules (name, expression, task, args, queue)"
        " VALUES ('a/../nightly', '0 3 * * *', 'noop', '{}', 'cron')"
    )
    tick = insert_job(
        conn, task="noop", status="succeeded", meta='{"cron": {"schedule": "a/../nightly"}}'
    )
    insert_job(conn, task="noop", status="succeeded", meta='{"cron": {"schedule": "other"}}')
    with logged_in(server, ADMIN_TOKEN) as client:
        page = client.get("/schedules").text
        runs = re.search(r'<td class="runs">(.*?)</td>', page, re.S)
        assert runs is not None
        assert re.findall(r'href="/jobs/(\d+)"', runs.group(1)) == [str(tick)]
        csrf = _csrf(page)
        r = client.post("/schedules/a%2F..%2Fnightly/pause", data={"csrf_token": csrf})
        assert r.status_code == 303
        assert conn.execute("SELECT paused FROM pgjobs.schedules").fetchone() == (True,)
        page = client.get(r.headers["location"]).text
        assert "Schedule paused" in page
        assert 'action="/schedules/a%2F..%2Fnightly/resume"' in page
        conn.execute("UPDATE pgjobs.schedules SET active_since = now() - interval '1 day'")
        r = client.post("/schedules/a%2F..%2Fnightly/resume", data={"csrf_token": csrf})
        assert r.status_code == 303
        # Resumed from now on: the ticks missed while paused never fire.
        assert conn.execute(
            "SELECT paused, active_since > now() - interval '1 minute' FROM pgjobs.schedules"
        ).fetchone() == (False, True)
        r = client.post("/schedules/nope/pause", data={"csrf_token": csrf})
        assert r.status_code == 404
