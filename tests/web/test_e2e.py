"""End to end in a real headless Chromium: find a failed job, read its traceback, retry it.

Uses Debian's chromium (/usr/bin/chromium) through Playwright's executable_path;
Playwright's own browser downloads are never used. Screenshots of every page
visited go to test-output/web/.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import psycopg
import pytest

pytest.importorskip("starlette", reason="the web extra is not installed: pip install 'pgjobs[web]'")
sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")

from tests.conftest import REPO, wait_until  # noqa: E402
from tests.web.conftest import ADMIN_TOKEN, VIEWER_TOKEN  # noqa: E402

CHROMIUM = os.environ.get("PGJOBS_CHROMIUM", "/usr/bin/chromium")
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SHOTS = REPO / "test-output" / "web"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"no Chromium at {CHROMIUM}"),
]


@pytest.fixture
def browser() -> Any:
    SHOTS.mkdir(parents=True, exist_ok=True)
    with sync_api.sync_playwright() as p:
        launched = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        yield launched
        launched.close()


def login(browser: Any, base: str, token: str) -> Any:
    page = browser.new_context(viewport={"width": 1360, "height": 900}).new_page()
    page.on("dialog", lambda dialog: dialog.accept())
    page.goto(base)  # not logged in: sent to the login form
    assert "/login" in page.url
    page.fill("input[name=token]", token)
    page.click("button:has-text('Log in')")
    page.wait_for_url(base)
    return page


def shot(page: Any, name: str) -> None:
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def job_status(dsn: str, job_id: int) -> str:
    with psycopg.connect(dsn) as conn:
        row = conn.execute("SELECT status::text FROM pgjobs.jobs WHERE id = %s", (job_id,))
        found = row.fetchone()
    assert found is not None
    return str(found[0])


def test_failed_job_is_found_read_retried_and_succeeds(
    serve: Any, start_worker: Any, browser: Any, dsn: str, fixed: Any
) -> None:
    from tests.web.app import app

    server = serve(refresh_seconds=1)
    base = server.url
    broken = app.enqueue("fragile", {"key": "e2e", "password": "hunter2"})
    second = app.enqueue("fragile", {"key": "e2e-viewer"})
    app.enqueue("noop", {"n": 1})
    assert broken is not None
    assert second is not None
    start_worker("tests.web.app:app", "--concurrency", "2", "--poll-interval", "0.2")
    wait_until(lambda: job_status(dsn, broken) == "failed" == job_status(dsn, second))

    page = login(browser, base, ADMIN_TOKEN)
    page.wait_for_selector("text=Live workers")
    assert page.locator("table.grid").first.inner_text().count("default") == 1
    shot(page, "01-overview")

    page.click("nav >> text=Jobs")
    page.click("#state-tabs a[data-state=failed]")
    page.wait_for_url("**/jobs?status=failed**")
    rows = page.locator("#jobs-table tbody tr")
    assert rows.count() == 2
    assert "RuntimeError" in rows.first.inner_text()
    shot(page, "02-jobs-failed")

    page.click(f"#jobs-table a:text-is('{broken}')")
    page.wait_for_url(f"**/jobs/{broken}")
    traceback = page.locator("pre.traceback").first.inner_text()
    assert "Traceback (most recent call last)" in traceback
    assert "RuntimeError: e2e is broken" in traceback
    assert "hunter2" in page.locator("#job-args").inner_text()  # admins see every arg
    shot(page, "03-job-failed")

    fixed("e2e")
    page.click("button:has-text('Retry')")  # the dialog handler confirms
    page.wait_for_selector("text=Job put back in line.")
    # Live refresh swaps the page while the worker runs the job again. (A selector, not
    # wait_for_function: the page's Content-Security-Policy forbids evaluating strings.)
    page.wait_for_selector("#job-status:text-is('succeeded')", timeout=20_000)
    assert "e2e ok" in page.locator("pre.json").last.inner_text()
    shot(page, "04-job-succeeded")

    for name in ("queues", "workers", "schedules"):
        page.click(f"nav >> text={name.capitalize()}")
        page.wait_for_url(f"**/{name}")
        shot(page, f"05-{name}")
    assert page.locator("text=No schedules").count() == 1

    viewer = login(browser, base, VIEWER_TOKEN)
    viewer.goto(f"{base}jobs/{second}")
    assert viewer.locator("#job-args").inner_text().count("[redacted]") == 0  # no secret here
    retry = viewer.locator("button:has-text('Retry')")
    assert retry.is_disabled()
    shot(viewer, "06-viewer-job")
    # Past the disabled button, the server still says no.
    retry.evaluate(
        "b => { b.disabled = false; b.form.querySelector('[name=confirm]').value = 'yes'; }"
    )
    retry.click()
    viewer.wait_for_selector("#error-message")
    assert "viewer" in viewer.locator("#error-message").inner_text()
    shot(viewer, "07-viewer-refused")
    assert job_status(dsn, second) == "failed"

    viewer.goto(f"{base}jobs/{broken}")
    assert "[redacted]" in viewer.locator("#job-args").inner_text()
    assert "hunter2" not in viewer.content()


def test_progress_shows_live_in_the_jobs_list_and_on_the_job_page(
    serve: Any, start_worker: Any, browser: Any, dsn: str, fixed: Any
) -> None:
    from tests.web.app import app

    server = serve(refresh_seconds=1)
    job_id = app.enqueue("stepper", {"key": "live"})
    assert job_id is not None
    start_worker("tests.web.app:app", "--poll-interval", "0.2")

    page = login(browser, server.url, ADMIN_TOKEN)
    page.goto(f"{server.url}jobs?status=running")
    cell = f"#jobs-table tr:has(a:text-is('{job_id}')) .progress-text"
    page.wait_for_selector(f"{cell}:text-is('1/3 step 1 of 3')", timeout=20_000)
    bar = page.locator(f"#jobs-table tr:has(a:text-is('{job_id}')) progress")
    assert (bar.get_attribute("value"), bar.get_attribute("max")) == ("1", "3")
    shot(page, "08-jobs-progress")
    # The handler moves on; live refresh shows it without a reload.
    fixed("live-1")
    page.wait_for_selector(f"{cell}:text-is('2/3 step 2 of 3')", timeout=20_000)

    page.click(f"#jobs-table a:text-is('{job_id}')")
    page.wait_for_url(f"**/jobs/{job_id}")
    assert "2/3 step 2 of 3" in page.locator("#job-progress").inner_text()
    fixed("live-2")
    last = "#job-progress .progress-text:text-is('3/3 step 3 of 3')"
    page.wait_for_selector(last, timeout=20_000)
    shot(page, "09-job-progress")
    fixed("live-3")
    page.wait_for_selector("#job-status:text-is('succeeded')", timeout=20_000)
