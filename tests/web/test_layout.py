"""The dashboard's layout in a real headless Chromium: phones, dark mode, contrast, the skip link.

Every page is loaded at 1440x900 and at 390x844 (a phone), in the light and the
dark theme; none may scroll sideways, and the screenshots of each go to
test-output/web/layout/ (PAGE-WIDTH-THEME.png) for people to look at.
Muted text and disabled buttons are checked against WCAG AA (4.5:1) in both
themes, from the colours Chromium computed.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("starlette", reason="the web extra is not installed: pip install 'pgjobs[web]'")
sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")

from tests.web.conftest import ADMIN_TOKEN, VIEWER_TOKEN, insert_job  # noqa: E402
from tests.web.test_e2e import ARGS, CHROMIUM, SHOTS  # noqa: E402

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"no Chromium at {CHROMIUM}"),
]

LAYOUT = SHOTS / "layout"
SIZES = {"1440": {"width": 1440, "height": 900}, "390": {"width": 390, "height": 844}}


@pytest.fixture
def browser() -> Iterator[Any]:
    with sync_api.sync_playwright() as p:
        launched = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        yield launched
        launched.close()


def _login(browser: Any, base: str, token: str, viewport: dict[str, int], scheme: str) -> Any:
    context = browser.new_context(viewport=viewport, color_scheme=scheme)
    page = context.new_page()
    page.goto(f"{base}login")
    page.fill("input[name=token]", token)
    page.click("button:has-text('Log in')")
    page.wait_for_url(base)
    return page


def _rgb(css: str) -> tuple[float, ...]:
    found = re.findall(r"[\d.]+", css)
    return tuple(float(v) for v in found[:3])


def _luminance(rgb: tuple[float, ...]) -> float:
    def channel(v: float) -> float:
        v /= 255
        return v / 12.92 if v <= 0.03928 else ((v + 0.055) / 1.055) ** 2.4

    r, g, b = (channel(v) for v in rgb)
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast(fg: str, bg: str) -> float:
    """The WCAG contrast ratio of two computed CSS colours (rgb(...))."""
    a, b = sorted((_luminance(_rgb(fg)), _luminance(_rgb(bg))), reverse=True)
    return (a + 0.05) / (b + 0.05)


def _colours(page: Any, selector: str) -> tuple[str, str]:
    """The text colour of `selector` and the first opaque background behind it."""
    found = page.locator(selector).first.evaluate(
        """e => {
            const fg = getComputedStyle(e).color;
            let n = e, bg = 'rgba(0, 0, 0, 0)';
            while (n && n.nodeType === 1) {
                bg = getComputedStyle(n).backgroundColor;
                if (!/rgba\\(.*, 0\\)$/.test(bg) && bg !== 'transparent') break;
                n = n.parentElement;
            }
            return JSON.stringify([fg, bg]);
        }"""
    )
    fg, bg = json.loads(found)
    return fg, bg


@pytest.fixture
def filled(conn: Any) -> dict[str, int]:
    trace = (
        "Traceback (most recent call last):\n"
        + (
            '  File "/venv/lib/python3.11/site-packages/lib/with/a/very/long/path/module.py",'
            " line 1, in f\n    g()\n"
        )
        * 5
        + "RuntimeError: "
        + "x" * 300
        + "\n"
    )
    error = json.dumps(
        [{"attempt": 1, "type": "RuntimeError", "message": "y" * 400, "traceback": trace}]
    )
    failed = insert_job(
        conn, status="failed", queue="a-queue-with-a-rather-long-name", errors=error
    )
    insert_job(conn, status="running", started_at="2026-01-01T00:00:00Z")
    insert_job(conn, status="queued", queue="mail", attempts=1, errors=error)
    conn.execute(
        "INSERT INTO pgjobs.jobs (task, queue, status, finished_at)"
        " SELECT 'report', 'reports', 'succeeded', now() - make_interval(mins => i % 50)"
        " FROM generate_series(1, 500) AS i"
    )
    conn.execute(
        "INSERT INTO pgjobs.schedules (name, expression, task, args)"
        " VALUES ('nightly-report-for-every-tenant', '0 3 * * *', 'noop', '{\"n\": 1}')"
    )
    conn.execute(
        "INSERT INTO pgjobs.workers (host, pid, queues, concurrency)"
        " VALUES ('worker-host-with-a-long-name.internal', 4242, ARRAY['mail', 'reports'], 8)"
    )
    return {"failed": failed}


def test_no_page_scrolls_sideways_on_a_phone_or_a_desktop_in_either_theme(
    serve: Any, browser: Any, filled: dict[str, int]
) -> None:
    server = serve()
    base = server.url
    LAYOUT.mkdir(parents=True, exist_ok=True)
    pages = {
        "overview": "",
        "jobs": "jobs",
        "jobs-failed": "jobs?status=failed",
        "job": f"jobs/{filled['failed']}",
        "queues": "queues",
        "workers": "workers",
        "schedules": "schedules",
    }
    sideways = []
    for size, viewport in SIZES.items():
        for scheme in ("light", "dark"):
            page = _login(browser, base, ADMIN_TOKEN, viewport, scheme)
            for name, path in pages.items():
                page.goto(f"{base}{path}")
                wide = page.locator("html").evaluate("h => h.scrollWidth - h.clientWidth")
                if wide > 0:
                    sideways.append((name, size, scheme, wide))
                # The header stays inside itself: nothing in it past the right edge.
                right = page.locator("header.top").evaluate(
                    "h => Math.max(...Array.from(h.querySelectorAll('*'))"
                    ".map(e => e.getBoundingClientRect().right)) - h.getBoundingClientRect().right"
                )
                if right > 0.5:
                    sideways.append((f"{name} header", size, scheme, right))
                page.screenshot(path=str(LAYOUT / f"{name}-{size}-{scheme}.png"), full_page=True)
            page.context.close()
    assert sideways == [], sideways


def test_dark_mode_follows_the_system_and_the_toggle_and_text_keeps_aa_contrast(
    serve: Any, browser: Any, filled: dict[str, int]
) -> None:
    server = serve()
    base = server.url
    for scheme in ("light", "dark"):
        page = _login(browser, base, VIEWER_TOKEN, SIZES["1440"], scheme)
        page.goto(f"{base}jobs")
        body = page.evaluate("() => getComputedStyle(document.body).backgroundColor")
        assert (_luminance(_rgb(body)) < 0.1) == (scheme == "dark"), (scheme, body)
        # Muted text, and the disabled buttons a viewer sees, at AA (4.5:1) or better.
        assert contrast(*_colours(page, "#count")) >= 4.5, scheme
        assert contrast(*_colours(page, ".bulk button[disabled]")) >= 4.5, scheme
        page.goto(f"{base}")
        assert contrast(*_colours(page, ".card .k")) >= 4.5, scheme
        page.context.close()
    # The toggle overrides the system, and the choice stays for the next page.
    page = _login(browser, base, VIEWER_TOKEN, SIZES["1440"], "light")
    assert page.locator("#theme-toggle").inner_text() == "dark mode"
    page.click("#theme-toggle")
    assert page.locator("html").get_attribute("data-theme") == "dark"
    page.goto(f"{base}queues")
    assert page.locator("html").get_attribute("data-theme") == "dark"
    body = page.evaluate("() => getComputedStyle(document.body).backgroundColor")
    assert _luminance(_rgb(body)) < 0.1
    assert page.locator("#theme-toggle").inner_text() == "light mode"
    # The skip link is the first stop of the keyboard, and lands on the content.
    page.keyboard.press("Tab")
    assert page.evaluate("() => document.activeElement.className") == "skip"
    assert page.locator(".skip").is_visible()
    page.keyboard.press("Enter")
    assert page.evaluate("() => document.activeElement.id") == "live"
    page.context.close()
