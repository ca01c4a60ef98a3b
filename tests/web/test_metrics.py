"""The dashboard's GET /metrics against a real database: behind a token, the queues' real depth."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest

pytest.importorskip("starlette", reason="the web extra is not installed: pip install 'pgjobs[web]'")
pytest.importorskip("httpx", reason="the web extra is not installed")
pytest.importorskip("prometheus_client", reason="the parser comes with the metrics extra")

from prometheus_client.parser import text_string_to_metric_families

from tests.web.conftest import ADMIN, VIEWER, insert_job

Conn = psycopg.Connection[Any]


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_metrics_need_a_token(http: Any) -> None:
    r = http.get("/metrics")
    assert r.status_code == 401
    assert r.headers["www-authenticate"] == "Bearer"
    assert "authentication required" in r.json()["error"]["message"]
    assert (
        http.get("/metrics", headers={"Authorization": "Bearer wrong-token-0123456789"}).status_code
        == 401
    )


def test_metrics_give_the_depth_of_each_queue_and_the_dead_rows(http: Any, conn: Conn) -> None:
    due = [insert_job(conn, queue="emails") for _ in range(3)]
    insert_job(conn, queue="emails", run_at="2999-01-01T00:00:00Z")
    insert_job(conn, queue="emails", status="running")
    insert_job(conn, queue="reports", status="running")
    insert_job(conn, queue="reports", status="succeeded")
    conn.execute(
        "UPDATE pgjobs.jobs SET run_at = now() - interval '90 seconds' WHERE id = %s", (due[0],)
    )
    conn.execute("INSERT INTO pgjobs.queues (name, paused) VALUES ('quiet', false)")
    for headers in (VIEWER, ADMIN):
        r = http.get("/metrics", headers=headers)
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/plain; version=0.0.4")
        got = samples(r.text)

        def depth(queue: str, state: str, got: dict[Any, float] = got) -> float:
            return got[("pgjobs_queue_jobs", (("queue", queue), ("state", state)))]

        assert (depth("emails", "available"), depth("emails", "scheduled")) == (3, 1)
        assert (depth("emails", "running"), depth("reports", "running")) == (1, 1)
        assert depth("reports", "available") == 0
        # A queue without active jobs but with settings is listed, with zeros.
        assert depth("quiet", "available") == 0
        oldest = got[("pgjobs_queue_oldest_due_seconds", (("queue", "emails"),))]
        assert 90 <= oldest < 600
        assert got[("pgjobs_queue_oldest_due_seconds", (("queue", "reports"),))] == 0
        assert ("pgjobs_table_dead_tuples", (("table", "jobs_live"),)) in got
        assert got[("pgjobs_table_dead_tuples", (("table", "jobs_live"),))] >= 0


def test_a_worker_of_every_queue_adds_its_queues_but_not_a_star(http: Any, conn: Conn) -> None:
    conn.execute(
        "INSERT INTO pgjobs.workers (host, pid, queues, concurrency)"
        " VALUES ('h', 1, ARRAY['*', 'found'], 1)"
    )
    got = samples(http.get("/metrics", headers=VIEWER).text)
    queues = {dict(labels).get("queue") for name, labels in got if name == "pgjobs_queue_jobs"}
    assert "found" in queues  # served by a live worker: listed, with zeros
    assert "*" not in queues
