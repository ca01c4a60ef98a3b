"""The documented factory mounts the dashboard inside another ASGI app, under a prefix."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest

pytest.importorskip("starlette", reason="the web extra is not installed: pip install 'pgjobs[web]'")

from tests.web.conftest import ADMIN, ADMIN_TOKEN


def test_mounted_under_a_prefix_in_a_host_starlette_app(dsn: str) -> None:
    from starlette.applications import Starlette
    from starlette.responses import PlainTextResponse
    from starlette.routing import Mount, Route

    import pgjobs.web
    from pgjobs.web._serve import serve_in_thread
    from tests.web.app import app as jobs_app

    jobs_app.dsn = dsn

    async def home(request: Any) -> PlainTextResponse:
        return PlainTextResponse("the host app")

    dashboard = pgjobs.web.create_app(jobs_app, dsn=dsn, tokens=f"admin:{ADMIN_TOKEN}")
    host = Starlette(routes=[Route("/", home), Mount("/pgjobs", app=dashboard)])
    server = serve_in_thread(host)
    try:
        base = server.url.rstrip("/")
        with httpx.Client(base_url=base, timeout=15) as client:
            assert client.get("/").text == "the host app"
            assert client.get("/pgjobs/healthz").status_code == 200
            submitted = client.post(
                "/pgjobs/api/v1/jobs", json={"task": "noop", "args": {"n": 7}}, headers=ADMIN
            )
            assert submitted.status_code == 201, submitted.text
            job_id = submitted.json()["id"]
            shown = client.get(f"/pgjobs/api/v1/jobs/{job_id}", headers=ADMIN)
            assert shown.json()["args"] == {"n": 7}
            page = client.get("/pgjobs/", headers=ADMIN)
            assert page.status_code == 200
            # Every link and asset is a path under the prefix, not at the host's root
            # (and names no host: the Host header never makes it into a URL).
            links = re.findall(r'(?:href|src|action)="([^"]+)"', page.text)
            assert "/pgjobs/jobs" in links
            assert "/pgjobs/static/style.css" in links
            # (The skip link's "#live" stays on the page.)
            assert all(u.startswith("/pgjobs/") or u == "#live" for u in links), links
    finally:
        server.stop()
