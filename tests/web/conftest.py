"""Fixtures for the dashboard tests: a real uvicorn server on loopback, against the test database.

The web extra is imported lazily, inside fixtures, so that without it every
test module skips itself (with pytest.importorskip) instead of failing here.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

import psycopg
import pytest

ADMIN_TOKEN = "admin-token-0123456789abcdef"
VIEWER_TOKEN = "viewer-token-0123456789abcdef"
TOKENS = f"alice=admin:{ADMIN_TOKEN},viewer:{VIEWER_TOKEN}"
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
VIEWER = {"Authorization": f"Bearer {VIEWER_TOKEN}"}


@pytest.fixture
def fixed(dsn: str) -> Callable[[str], None]:
    """Mark a key of the `fragile` task as fixed, so its next run succeeds."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS web_fixed (key text PRIMARY KEY)")
        conn.execute("TRUNCATE web_fixed")

    def mark(key: str) -> None:
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute("INSERT INTO web_fixed VALUES (%s) ON CONFLICT DO NOTHING", (key,))

    return mark


@pytest.fixture
def serve(dsn: str, fixed: object) -> Iterator[Callable[..., Any]]:
    """Start the dashboard of tests/web/app.py in a thread; `serve(**create_app_options)`."""
    from pgjobs.web import create_app
    from pgjobs.web._serve import serve_in_thread
    from tests.web.app import app

    app.dsn = dsn
    servers = []

    def start(**options: Any) -> Any:
        options.setdefault("tokens", TOKENS)
        options.setdefault("refresh_seconds", 0)
        options.setdefault("dsn", dsn)
        server = serve_in_thread(create_app(app, **options))
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def server(serve: Callable[..., Any]) -> Any:
    """The dashboard with an admin token (named alice) and a viewer token."""
    return serve()


@pytest.fixture
def http(server: Any) -> Iterator[Any]:
    """An httpx client for `server`, with no credentials."""
    import httpx

    with httpx.Client(base_url=server.url.rstrip("/"), timeout=15) as client:
        yield client


def insert_job(conn: psycopg.Connection[Any], **fields: Any) -> int:
    """Insert a job row directly (any status), the way a worker would have left it."""
    fields.setdefault("task", "fragile")
    fields.setdefault("args", '{"key": "k"}')
    if fields.get("status") == "running":
        fields.setdefault("worker_id", 999)
    if fields.get("status") in ("succeeded", "failed", "cancelled"):
        fields.setdefault("finished_at", "now()")
    names = list(fields)
    values = [fields[n] for n in names]
    placeholders = ", ".join("now()" if v == "now()" else "%s" for v in values)
    row = conn.execute(
        f"INSERT INTO pgjobs.jobs ({', '.join(names)}) VALUES ({placeholders}) RETURNING id",
        [v for v in values if v != "now()"],
    ).fetchone()
    assert row is not None
    return int(row[0])


@contextlib.contextmanager
def captured_logs() -> Iterator[list[dict[str, Any]]]:
    """structlog events logged meanwhile, in any thread."""
    import structlog.testing

    with structlog.testing.capture_logs() as logs:
        yield logs
