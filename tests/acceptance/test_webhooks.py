"""Webhooks delivered by worker processes to a real HTTP server in this test process.

The server (http.server in a thread) records every request and answers as
the test says: a status per request, or no answer for a while. The App is
tests/apps/hooks.py, whose webhook points at the server; signatures are
checked with the README's own `verify`.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from tests.apps.hooks import SECRET
from tests.conftest import wait_until
from tests.unit.test_webhooks import readme_verify
from tests.webhook_endpoint import Endpoint

pytest.importorskip(
    "httpx", reason="the webhooks extra is not installed: pip install 'pgjobs[webhooks]'"
)

APP = "tests.apps.hooks:app"
Conn = psycopg.Connection[tuple[Any, ...]]


@pytest.fixture
def endpoint(monkeypatch: pytest.MonkeyPatch) -> Iterator[Endpoint]:
    server = Endpoint()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    monkeypatch.setenv("PGJOBS_TEST_WEBHOOK_URL", server.url)
    yield server
    server.released.set()
    server.shutdown()
    server.server_close()


def enqueue(conn: Conn, task: str, args: dict[str, Any], max_attempts: int = 3) -> int:
    row = conn.execute(
        "SELECT pgjobs.enqueue(%s, %s, max_attempts => %s)", (task, json.dumps(args), max_attempts)
    ).fetchone()
    assert row is not None
    return int(row[0])


def deliveries(conn: Conn) -> list[tuple[int, str, int]]:
    """(id, status, attempts) of each delivery job."""
    return conn.execute(
        "SELECT id, status::text, attempts FROM pgjobs.jobs WHERE task = 'pgjobs.webhook'"
        " ORDER BY id"
    ).fetchall()


def test_a_success_is_delivered_signed(conn: Conn, start_worker: Any, endpoint: Endpoint) -> None:
    start_worker(APP)
    job = enqueue(conn, "hooks.ok", {"n": 1})
    enqueue(conn, "hooks.unwatched", {})
    wait_until(lambda: len(endpoint.received) == 1 and deliveries(conn)[0][1] == "succeeded")
    headers, body = endpoint.received[0]
    assert readme_verify()(SECRET, headers, body)
    assert not readme_verify()("not-the-secret-at-all", headers, body)
    assert headers["Content-Type"] == "application/json"
    assert headers["X-Pgjobs-Event"] == "succeeded"
    [(delivery, _, attempts)] = deliveries(conn)
    assert headers["X-Pgjobs-Delivery"] == str(delivery)
    assert attempts == 1
    payload = json.loads(body)
    assert payload["event"] == "succeeded"
    assert payload["webhook"] == "test-endpoint"
    assert payload["job"]["id"] == job
    assert payload["job"]["task"] == "hooks.ok"
    assert payload["job"]["status"] == "succeeded"
    # The unwatched task's job ran too, and fired nothing: a delivery is made
    # in the transaction that records the outcome, so by now it would exist.
    unwatched = "SELECT status::text FROM pgjobs.jobs WHERE task = 'hooks.unwatched'"
    wait_until(lambda: conn.execute(unwatched).fetchone() == ("succeeded",))
    assert len(deliveries(conn)) == 1


def test_a_failing_job_fires_failed_then_dead_lettered(
    conn: Conn, start_worker: Any, endpoint: Endpoint
) -> None:
    start_worker(APP)
    job = enqueue(conn, "hooks.boom", {"n": 7}, max_attempts=2)
    wait_until(lambda: len(endpoint.received) == 2)
    first, last = sorted(endpoint.payloads(), key=lambda p: p["job"]["attempts"])
    assert (first["event"], first["job"]["status"], first["job"]["attempts"]) == (
        "failed", "queued", 1,
    )  # fmt: skip
    assert (last["event"], last["job"]["status"], last["job"]["attempts"]) == (
        "dead-lettered", "failed", 2,
    )  # fmt: skip
    assert first["job"]["id"] == last["job"]["id"] == job
    assert last["job"]["error"]["type"] == "ValueError"
    assert last["job"]["error"]["message"] == "boom 7"
    for headers, body in endpoint.received:
        assert readme_verify()(SECRET, headers, body)


def test_a_500_is_retried_and_the_job_is_not_affected(
    conn: Conn, start_worker: Any, endpoint: Endpoint
) -> None:
    endpoint.statuses = [500]
    start_worker(APP)
    job = enqueue(conn, "hooks.ok", {"n": 2})
    wait_until(lambda: [d[1:] for d in deliveries(conn)] == [("succeeded", 2)])
    assert len(endpoint.received) == 2
    ids = {headers["X-Pgjobs-Delivery"] for headers, _ in endpoint.received}
    assert ids == {str(deliveries(conn)[0][0])}  # one delivery, sent twice
    assert all(readme_verify()(SECRET, h, b) for h, b in endpoint.received)
    errors = conn.execute("SELECT errors FROM pgjobs.jobs WHERE task = 'pgjobs.webhook'").fetchone()
    assert errors is not None
    assert "answered 500" in errors[0][0]["message"]
    assert conn.execute(
        "SELECT status::text, attempts, result FROM pgjobs.jobs WHERE id = %s", (job,)
    ).fetchone() == ("succeeded", 1, 3)


def test_a_hanging_endpoint_times_out_and_the_delivery_is_dead_lettered(
    conn: Conn, start_worker: Any, endpoint: Endpoint, monkeypatch: pytest.MonkeyPatch
) -> None:
    endpoint.hang = 30
    monkeypatch.setenv("PGJOBS_TEST_WEBHOOK_TIMEOUT", "0.5")
    monkeypatch.setenv("PGJOBS_TEST_WEBHOOK_ATTEMPTS", "2")
    start_worker(APP)
    job = enqueue(conn, "hooks.ok", {"n": 3})
    wait_until(lambda: [d[1:] for d in deliveries(conn)] == [("failed", 2)])
    errors = conn.execute("SELECT errors FROM pgjobs.jobs WHERE task = 'pgjobs.webhook'").fetchone()
    assert errors is not None
    assert [e["message"] for e in errors[0]] == [f"{endpoint.url} did not answer within 0.5s"] * 2
    assert len(endpoint.received) == 2
    # The job that fired is untouched, and the dead-lettered delivery fired nothing.
    assert conn.execute(
        "SELECT status::text, attempts FROM pgjobs.jobs WHERE id = %s", (job,)
    ).fetchone() == ("succeeded", 1)
    assert conn.execute("SELECT count(*) FROM pgjobs.jobs").fetchone() == (2,)


def test_a_webhook_added_by_sql_is_delivered_by_a_worker_without_webhooks(
    conn: Conn, start_worker: Any, endpoint: Endpoint
) -> None:
    conn.execute(
        "INSERT INTO pgjobs.webhooks (name, url, secret, events, tasks)"
        " VALUES ('by-sql', %s, %s, ARRAY['succeeded'], ARRAY['record'])",
        (endpoint.url, SECRET),
    )
    start_worker("tests.apps.basic:app")
    job = enqueue(conn, "record", {"key": "k"})
    wait_until(lambda: len(endpoint.received) == 1)
    headers, body = endpoint.received[0]
    assert readme_verify()(SECRET, headers, body)
    assert json.loads(body)["job"]["id"] == job
    assert json.loads(body)["webhook"] == "by-sql"
