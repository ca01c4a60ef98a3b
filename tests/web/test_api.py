"""The HTTP JSON API against a real database and a real server: behaviour, auth and bad input."""

from __future__ import annotations

import json
from typing import Any

import psycopg
import pytest

pytest.importorskip("starlette", reason="the web extra is not installed: pip install 'pgjobs[web]'")
httpx = pytest.importorskip("httpx", reason="the web extra is not installed")

from tests.web.conftest import ADMIN, VIEWER, captured_logs, insert_job  # noqa: E402

Conn = psycopg.Connection[Any]


def submit(http: Any, **body: Any) -> Any:
    return http.post("/api/v1/jobs", json=body, headers=ADMIN)


# -- health ------------------------------------------------------------------


def test_healthz_reports_database_and_schema(http: Any) -> None:
    r = http.get("/healthz")
    assert r.status_code == 200
    assert r.json()["status"] == "ok"
    assert r.json()["schema_revision"]


def test_healthz_is_503_without_schema(serve: Any, server_dsn: str) -> None:
    from psycopg.conninfo import make_conninfo

    name = "pgjobs_web_empty"
    with psycopg.connect(server_dsn, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}"')
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        server = serve(dsn=make_conninfo(server_dsn, dbname=name))
        r = httpx.get(server.url + "healthz", timeout=15)
        assert r.status_code == 503
        assert "pgjobs migrate" in r.json()["error"]["message"]
        server.stop()
    finally:
        with psycopg.connect(server_dsn, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_unreachable_database_is_503_not_500(serve: Any) -> None:
    server = serve(dsn="postgresql://nobody@127.0.0.1:1/nothing", connect_timeout=1)
    assert httpx.get(server.url + "healthz", timeout=30).status_code == 503
    r = httpx.get(server.url + "api/v1/jobs", headers=ADMIN, timeout=30)
    assert r.status_code == 503
    assert "did not give a connection" in r.json()["error"]["message"]


# -- authentication ----------------------------------------------------------


def test_no_token_is_401_with_a_challenge(http: Any) -> None:
    r = http.get("/api/v1/jobs")
    assert r.status_code == 401
    assert r.headers["www-authenticate"] == "Bearer"
    assert "Bearer TOKEN" in r.json()["error"]["message"]


def test_unknown_token_is_401(http: Any) -> None:
    r = http.get("/api/v1/jobs", headers={"Authorization": "Bearer not-a-configured-token"})
    assert r.status_code == 401


def test_viewer_reads_but_may_not_act(http: Any, conn: Conn) -> None:
    job = insert_job(conn, status="failed")
    assert http.get(f"/api/v1/jobs/{job}", headers=VIEWER).status_code == 200
    for path in (f"/api/v1/jobs/{job}/retry", f"/api/v1/jobs/{job}/cancel"):
        r = http.post(path, headers=VIEWER)
        assert r.status_code == 403, path
        assert "viewer" in r.json()["error"]["message"]
    assert http.delete(f"/api/v1/jobs/{job}", headers=VIEWER).status_code == 403
    assert submit_as(http, VIEWER).status_code == 403
    assert http.post("/api/v1/queues/default/pause", headers=VIEWER).status_code == 403
    status = conn.execute("SELECT status FROM pgjobs.jobs WHERE id = %s", (job,)).fetchone()
    assert status == ("failed",)


def submit_as(http: Any, headers: dict[str, str]) -> Any:
    return http.post("/api/v1/jobs", json={"task": "noop"}, headers=headers)


def test_without_tokens_loopback_is_admin_but_other_hosts_are_refused(serve: Any) -> None:
    server = serve(tokens="")
    ok = httpx.post(server.url + "api/v1/jobs", json={"task": "noop"}, timeout=15)
    assert ok.status_code == 201
    # A DNS-rebinding page reaches 127.0.0.1 under its own host name.
    r = httpx.get(server.url + "api/v1/jobs", headers={"Host": "evil.example"}, timeout=15)
    assert r.status_code == 403
    assert "PGJOBS_DASHBOARD_TOKENS" in r.json()["error"]["message"]


def test_cross_site_browser_posts_are_refused(http: Any, conn: Conn) -> None:
    job = insert_job(conn, status="failed")
    r = http.post(f"/api/v1/jobs/{job}/retry", headers={**ADMIN, "Origin": "https://evil.example"})
    assert r.status_code == 403
    r = http.post(f"/api/v1/jobs/{job}/retry", headers={**ADMIN, "Sec-Fetch-Site": "cross-site"})
    assert r.status_code == 403


# -- submitting --------------------------------------------------------------


def test_submit_returns_the_job_and_logs_who(serve: Any, conn: Conn) -> None:
    with captured_logs() as logs:
        server = serve()
        r = httpx.post(
            server.url + "api/v1/jobs",
            json={"task": "noop", "args": {"n": 7}, "queue": "q1", "priority": 1},
            headers=ADMIN,
            timeout=15,
        )
    assert r.status_code == 201, r.text
    job = r.json()
    assert (job["task"], job["args"], job["queue"], job["priority"]) == ("noop", {"n": 7}, "q1", 1)
    assert job["state"] == "queued"
    assert job["meta"]["submitted_by"] == "alice"
    row = conn.execute("SELECT task, queue FROM pgjobs.jobs WHERE id = %s", (job["id"],))
    assert row.fetchone() == ("noop", "q1")
    actions = [e for e in logs if e["event"] == "dashboard.action"]
    assert actions == [
        {
            "event": "dashboard.action",
            "log_level": "info",
            "who": "alice",
            "via": "token",
            "action": "job.submit",
            "job_id": job["id"],
            "task": "noop",
            "queue": "q1",
        }
    ]


def test_submit_unknown_task_is_422_with_the_known_tasks(http: Any) -> None:
    r = submit(http, task="no_such_task")
    assert r.status_code == 422
    assert r.json()["error"]["known_tasks"] == ["fragile", "noop", "stepper"]


def test_submit_a_name_that_a_pattern_serves(dsn: str, conn: Conn) -> None:
    import pgjobs
    from pgjobs.web import create_app
    from pgjobs.web._serve import serve_in_thread
    from tests.web.conftest import TOKENS

    routed = pgjobs.App(dsn)

    @routed.task(name="reports.*", queue="reports")
    def any_report(day: str) -> None:
        """Every reports.<name> job."""

    server = serve_in_thread(create_app(routed, tokens=TOKENS, refresh_seconds=0, dsn=dsn))
    try:
        with httpx.Client(base_url=server.url.rstrip("/"), timeout=15) as http:
            r = submit(http, task="reports.daily", args={"day": "mon"})
            assert r.status_code == 201, r.text
            assert (r.json()["task"], r.json()["queue"]) == ("reports.daily", "reports")
            r = submit(http, task="reports.daily", args={"month": 1})
            assert r.status_code == 422
            assert "missing a required argument: 'day'" in r.json()["error"]["message"]
            r = submit(http, task="reports.*", args={"day": "mon"})
            assert r.status_code == 422
            assert "a pattern, not a task name" in r.json()["error"]["message"]
    finally:
        server.stop()
    assert conn.execute("SELECT task FROM pgjobs.jobs").fetchall() == [("reports.daily",)]


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        ({"task": "noop", "args": {"bogus": 1}}, "bogus"),
        ({"task": "noop", "args": [1]}, "args must be a JSON object"),
        ({"task": "noop", "priority": 9}, "priority"),
        ({"task": "noop", "priority": "high"}, "priority"),
        ({"task": "noop", "delay": -1}, "delay"),
        ({"task": "noop", "run_at": "tomorrow"}, "ISO 8601"),
        ({"task": "noop", "run_at": "2030-01-01T00:00:00"}, "timezone"),
        ({"task": "noop", "max_attempts": 0}, "max_attempts"),
        ({"task": "noop", "queue": ""}, "queue"),
        ({"task": "noop", "fingerprint": "a\u0000b"}, "NUL"),
        ({"task": "noop", "surprise": True}, "unknown field"),
        ({"args": {}}, "task is required"),
    ],
)
def test_submit_bad_fields_are_422(http: Any, body: dict[str, Any], needle: str) -> None:
    r = submit(http, **body)
    assert r.status_code == 422, r.text
    assert needle in r.json()["error"]["message"]


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        (b"{not json", "not valid JSON"),
        (b"[1, 2]", "must be a JSON object"),
        (b"", "empty"),
        (b"\xff\xfe", "not valid JSON"),
        (b"[" * 100_000, "deeply"),
    ],
)
def test_submit_bad_json_is_400(http: Any, content: bytes, needle: str) -> None:
    headers = {**ADMIN, "Content-Type": "application/json"}
    r = http.post("/api/v1/jobs", content=content, headers=headers)
    assert r.status_code == 400, r.text
    assert needle in r.json()["error"]["message"]


def test_oversized_body_is_413(http: Any) -> None:
    big = json.dumps({"task": "noop", "args": {"n": "x" * 300_000}}).encode()
    r = http.post(
        "/api/v1/jobs", content=big, headers={**ADMIN, "Content-Type": "application/json"}
    )
    assert r.status_code == 413

    def chunks() -> Any:  # no Content-Length: the limit still holds while streaming
        for _ in range(40):
            yield b"x" * 10_000

    r = http.post("/api/v1/jobs", content=chunks(), headers=ADMIN)
    assert r.status_code == 413


def test_submit_with_delay_is_scheduled_and_run_at_is_kept(http: Any) -> None:
    assert submit(http, task="noop", delay=3600).json()["state"] == "scheduled"
    r = submit(http, task="noop", run_at="2031-05-06T07:08:09Z")
    assert r.json()["run_at"].startswith("2031-05-06T07:08:09")


def test_duplicate_fingerprint_is_409_with_the_holder(http: Any) -> None:
    first = submit(http, task="noop", fingerprint="once").json()
    r = submit(http, task="noop", fingerprint="once")
    assert r.status_code == 409
    assert r.json()["error"]["existing_id"] == first["id"]


# -- reading -----------------------------------------------------------------


def test_status_retrying_includes_jobs_waiting_out_their_backoff(http: Any, conn: Conn) -> None:
    errors = json.dumps([{"attempt": 1, "type": "KeyError", "message": "k", "traceback": None}])
    later = "2099-01-01T00:00:00Z"
    backing_off = insert_job(conn, attempts=1, errors=errors, run_at=later)
    due = insert_job(conn, attempts=1, errors=errors)
    delayed = insert_job(conn, run_at=later)
    insert_job(conn)  # queued and due, never failed: neither

    def listed(status: str) -> list[tuple[int, str]]:
        r = http.get("/api/v1/jobs", params={"status": status}, headers=VIEWER)
        assert r.status_code == 200, r.text
        return [(j["id"], j["state"]) for j in r.json()["jobs"]]

    assert listed("retrying") == [(due, "retrying"), (backing_off, "retrying")]
    assert listed("scheduled") == [(delayed, "scheduled")]
    r = http.get(f"/api/v1/jobs/{backing_off}", headers=VIEWER)
    assert r.json()["state"] == "retrying"


def test_a_blocked_job_is_listed_and_shown_as_blocked(http: Any, conn: Conn) -> None:
    parent = insert_job(conn)
    blocked = insert_job(conn, status="blocked")
    conn.execute(
        "INSERT INTO pgjobs.job_dependencies (parent_id, job_id) VALUES (%s, %s)",
        [parent, blocked],
    )
    r = http.get("/api/v1/jobs", params={"status": "blocked"}, headers=VIEWER)
    assert r.status_code == 200, r.text
    assert [(j["id"], j["state"]) for j in r.json()["jobs"]] == [(blocked, "blocked")]
    r = http.get(f"/api/v1/jobs/{blocked}", headers=VIEWER)
    assert (r.json()["state"], r.json()["status"]) == ("blocked", "blocked")


def test_deleting_a_parent_cancels_what_waits_for_it(http: Any, conn: Conn) -> None:
    parent = insert_job(conn)
    blocked = insert_job(conn, status="blocked")
    conn.execute(
        "INSERT INTO pgjobs.job_dependencies (parent_id, job_id) VALUES (%s, %s)",
        [parent, blocked],
    )
    assert http.delete(f"/api/v1/jobs/{parent}", headers=ADMIN).json() == {"deleted": parent}
    row = conn.execute("SELECT status::text FROM pgjobs.jobs WHERE id = %s", [blocked])
    assert row.fetchone() == ("cancelled",)
    assert conn.execute("SELECT count(*) FROM pgjobs.job_dependencies").fetchone() == (0,)


def test_list_filters_and_keyset_pages(http: Any, conn: Conn) -> None:
    ids = [insert_job(conn, status="failed", queue="a") for _ in range(7)]
    insert_job(conn, status="succeeded", queue="a")
    insert_job(conn, status="failed", queue="b", task="noop")
    seen: list[int] = []
    cursor = None
    while True:
        params = {"status": "failed", "queue": "a", "limit": "3"}
        if cursor:
            params["cursor"] = cursor
        page = http.get("/api/v1/jobs", params=params, headers=VIEWER).json()
        seen += [j["id"] for j in page["jobs"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == sorted(ids, reverse=True)
    tasks = http.get("/api/v1/jobs", params={"task": "noop"}, headers=VIEWER).json()["jobs"]
    assert [j["queue"] for j in tasks] == ["b"]


def test_find_by_fingerprint(http: Any, conn: Conn) -> None:
    job = insert_job(conn, status="succeeded", fingerprint="order-42")
    insert_job(conn, status="succeeded", fingerprint="order-43")
    r = http.get("/api/v1/jobs", params={"fingerprint": "order-42"}, headers=VIEWER)
    assert [j["id"] for j in r.json()["jobs"]] == [job]


@pytest.mark.parametrize(
    ("params", "needle"),
    [
        ({"status": "exploded"}, "unknown status"),
        ({"limit": "0"}, "limit"),
        ({"limit": "100000000000000000000"}, "limit"),
        ({"limit": "ten"}, "limit"),
        ({"cursor": "garbage!"}, "cursor"),
        ({"cursor": "cGdqb2JzMTotNQ"}, "cursor"),  # pgjobs1:-5
        ({"queue": "a\u0000"}, "NUL"),
        ({"task": "t" * 300}, "longer"),
    ],
)
def test_malformed_filters_are_400(http: Any, params: dict[str, str], needle: str) -> None:
    r = http.get("/api/v1/jobs", params=params, headers=VIEWER)
    assert r.status_code == 400, r.text
    assert needle in r.json()["error"]["message"]


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/api/v1/jobs/123456", 404),
        ("/api/v1/jobs/abc", 400),
        ("/api/v1/jobs/-1", 400),
        ("/api/v1/jobs/0", 400),
        ("/api/v1/jobs/99999999999999999999999", 400),
        ("/api/v1/nothing-here", 404),
    ],
)
def test_bad_ids_are_4xx_json(http: Any, path: str, status: int) -> None:
    r = http.get(path, headers=VIEWER)
    assert r.status_code == status
    assert r.json()["error"]["message"]


def test_job_detail_has_errors_and_result(http: Any, conn: Conn) -> None:
    errors = json.dumps(
        [{"attempt": 1, "type": "RuntimeError", "message": "boom", "traceback": "Traceback..."}]
    )
    job = insert_job(conn, status="failed", errors=errors, result='{"partial": true}')
    body = http.get(f"/api/v1/jobs/{job}", headers=VIEWER).json()
    assert body["errors"][0]["type"] == "RuntimeError"
    assert body["result"] == {"partial": True}


def test_secret_looking_args_are_redacted_for_viewers_only(http: Any) -> None:
    args = {"key": "k", "password": "hunter2"}
    job = submit(http, task="fragile", args=args).json()
    as_viewer = http.get(f"/api/v1/jobs/{job['id']}", headers=VIEWER).json()
    assert as_viewer["args"] == {"key": "k", "password": "[redacted]"}
    as_admin = http.get(f"/api/v1/jobs/{job['id']}", headers=ADMIN).json()
    assert as_admin["args"] == args


def test_redaction_is_configurable_and_nested(serve: Any, conn: Conn) -> None:
    server = serve(redact_keys=["card"])
    job = insert_job(
        conn, args=json.dumps({"key": "k", "billing": {"Card-Number": "4242"}, "password": "p"})
    )
    r = httpx.get(f"{server.url}api/v1/jobs/{job}", headers=VIEWER, timeout=15)
    assert r.json()["args"] == {
        "key": "k",
        "billing": {"Card-Number": "[redacted]"},
        "password": "p",
    }


# -- acting ------------------------------------------------------------------


def test_retry_cancel_delete_transitions(http: Any, conn: Conn) -> None:
    failed = insert_job(conn, status="failed")
    r = http.post(f"/api/v1/jobs/{failed}/retry", headers=ADMIN)
    assert (r.status_code, r.json()["status"]) == (200, "queued")
    r = http.post(f"/api/v1/jobs/{failed}/cancel", headers=ADMIN)
    assert (r.status_code, r.json()["status"]) == (200, "cancelled")
    r = http.post(f"/api/v1/jobs/{failed}/cancel", headers=ADMIN)
    assert r.status_code == 409
    assert "only queued or running jobs" in r.json()["error"]["message"]
    assert http.delete(f"/api/v1/jobs/{failed}", headers=ADMIN).json() == {"deleted": failed}
    assert http.get(f"/api/v1/jobs/{failed}", headers=ADMIN).status_code == 404
    assert http.post(f"/api/v1/jobs/{failed}/retry", headers=ADMIN).status_code == 404


def test_running_jobs_cannot_be_retried_or_deleted(http: Any, conn: Conn) -> None:
    running = insert_job(conn, status="running")
    for method, path in (
        ("POST", f"/api/v1/jobs/{running}/retry"),
        ("DELETE", f"/api/v1/jobs/{running}"),
    ):
        assert http.request(method, path, headers=ADMIN).status_code == 409, path


def test_cancel_of_a_running_job_asks_its_worker_and_records_the_api_user(
    http: Any, conn: Conn
) -> None:
    running = insert_job(conn, status="running")
    r = http.post(f"/api/v1/jobs/{running}/cancel", headers=ADMIN)
    assert r.status_code == 200, r.text
    row = conn.execute(
        "SELECT status::text, cancelled_by, cancel_requested_at IS NOT NULL"
        " FROM pgjobs.jobs WHERE id = %s",
        (running,),
    ).fetchone()
    assert row is not None
    assert row[0] == "running"  # until its worker stops it
    assert row[1].startswith("api:")
    assert row[2] is True


def test_bulk_retry_failed_of_a_task_and_cancel_queued_of_a_queue(http: Any, conn: Conn) -> None:
    for _ in range(3):
        insert_job(conn, status="failed", task="fragile")
    other = insert_job(conn, status="failed", task="noop")
    r = http.post("/api/v1/jobs/retry-failed", json={"task": "fragile"}, headers=ADMIN)
    assert r.json() == {"jobs": 3, "per_queue": {"default": 3}}
    assert conn.execute("SELECT status FROM pgjobs.jobs WHERE id = %s", (other,)).fetchone() == (
        "failed",
    )
    r = http.post("/api/v1/jobs/cancel-queued", json={"queue": "default"}, headers=ADMIN)
    assert r.json()["jobs"] == 3
    r = http.post("/api/v1/jobs/cancel-queued", json={}, headers=ADMIN)
    assert r.status_code == 422


def test_pause_and_resume_a_queue(http: Any, conn: Conn) -> None:
    insert_job(conn, status="queued", queue="mail")
    assert http.post("/api/v1/queues/mail/pause", headers=ADMIN).json() == {
        "name": "mail",
        "paused": True,
    }
    assert conn.execute("SELECT paused FROM pgjobs.queues WHERE name = 'mail'").fetchone() == (
        True,
    )
    queues = http.get("/api/v1/queues", headers=VIEWER).json()["queues"]
    assert {"name": "mail", "paused": True}.items() <= queues[0].items()
    http.post("/api/v1/queues/mail/resume", headers=ADMIN)
    assert conn.execute("SELECT paused FROM pgjobs.queues WHERE name = 'mail'").fetchone() == (
        False,
    )


def test_stats_count_and_chart_recent_outcomes(http: Any, conn: Conn) -> None:
    insert_job(conn, status="succeeded")
    insert_job(conn, status="failed")
    insert_job(conn, status="queued", queue="other")
    stats = http.get("/api/v1/stats", headers=VIEWER).json()
    by_name = {q["name"]: q for q in stats["queues"]}
    assert by_name["default"]["succeeded"] == {"value": 1, "kind": "exact"}
    assert by_name["other"]["available"] == 1
    assert len(stats["throughput"]) == 60
    last = stats["throughput"][-1]
    assert (last["succeeded"], last["failed"]) == (1, 1)
    assert stats["leader"]["known"] is True


def test_stats_chart_ranges_and_filters_read_the_per_minute_counts(http: Any, conn: Conn) -> None:
    """Counts kept by the trigger of migration 0019, by range, filtered by queue and task."""
    conn.execute(
        "INSERT INTO pgjobs.jobs (task, queue, status, finished_at)"
        " SELECT t, q, s::pgjobs.job_status, now() - a::interval"
        " FROM (VALUES ('mail', 'send', 'succeeded', '1 second', 3),"
        "              ('mail', 'send', 'failed', '3 hours', 2),"
        "              ('report', 'build', 'cancelled', '3 days', 4),"
        "              ('report', 'build', 'succeeded', '8 days', 9))"
        "   AS v (q, t, s, a, n), generate_series(1, n)"
    )

    def totals(**params: str) -> tuple[int, int, int, int, int]:
        body = http.get("/api/v1/stats", params=params, headers=VIEWER).json()
        rows = body["throughput"]
        return (
            len(rows),
            body["bucket_seconds"],
            sum(r["succeeded"] for r in rows),
            sum(r["failed"] for r in rows),
            sum(r["cancelled"] for r in rows),
        )

    assert totals() == (60, 60, 3, 0, 0)
    assert totals(range="24h") == (24, 3600, 3, 2, 0)
    assert totals(range="7d") == (168, 3600, 3, 2, 4)
    assert totals(range="7d", queue="report") == (168, 3600, 0, 0, 4)
    assert totals(range="7d", task="send") == (168, 3600, 3, 2, 0)
    assert totals(range="7d", queue="report", task="send") == (168, 3600, 0, 0, 0)
    r = http.get("/api/v1/stats", params={"range": "30d"}, headers=VIEWER)
    assert r.status_code == 400
    assert "use one of 1h, 24h, 7d" in r.json()["error"]["message"]


def test_schedules_list_and_run_now(http: Any, conn: Conn) -> None:
    conn.execute(
        "INSERT INTO pgjobs.schedules (name, expression, task, args, queue)"
        " VALUES ('nightly', '0 3 * * *', 'noop', '{\"n\": 5}', 'cron')"
    )
    body = http.get("/api/v1/schedules", headers=VIEWER).json()
    assert body["available"] is True
    assert body["schedules"][0]["expression"] == "0 3 * * *"
    r = http.post("/api/v1/schedules/nightly/run", headers=ADMIN)
    assert r.status_code == 201
    job = http.get(f"/api/v1/jobs/{r.json()['job_id']}", headers=ADMIN).json()
    assert (job["task"], job["args"], job["queue"]) == ("noop", {"n": 5}, "cron")
    assert job["meta"] == {"schedule": "nightly", "run_now_by": "alice"}
    assert http.post("/api/v1/schedules/nope/run", headers=ADMIN).status_code == 404


def test_openapi_lists_every_route(http: Any) -> None:
    spec = http.get("/api/v1/openapi.json").json()
    assert spec["openapi"].startswith("3.1")
    assert set(spec["paths"]) == {
        "/healthz",
        "/api/v1/jobs",
        "/api/v1/jobs/retry-failed",
        "/api/v1/jobs/cancel-queued",
        "/api/v1/jobs/{id}",
        "/api/v1/jobs/{id}/retry",
        "/api/v1/jobs/{id}/cancel",
        "/api/v1/stats",
        "/api/v1/queues",
        "/api/v1/queues/{name}/pause",
        "/api/v1/queues/{name}/resume",
        "/api/v1/queues/{name}",
        "/api/v1/breakers",
        "/api/v1/workers",
        "/api/v1/schedules",
        "/api/v1/schedules/{name}/run",
    }


def test_large_tables_show_estimates_not_counts(http: Any, conn: Conn, monkeypatch: Any) -> None:
    from pgjobs.web import _queries

    monkeypatch.setattr(_queries, "SMALL_TABLE_BYTES", -1)  # as if the table were huge
    conn.execute(
        "INSERT INTO pgjobs.jobs (task, queue, status, finished_at)"
        " SELECT 't', 'big', 'succeeded', now() FROM generate_series(1, 3000)"
    )
    conn.execute("INSERT INTO pgjobs.queues (name) VALUES ('none-finished')")
    conn.execute("ANALYZE pgjobs.jobs_live, pgjobs.job_history")
    queues = http.get("/api/v1/queues", headers=VIEWER).json()["queues"]
    by_name = {q["name"]: q for q in queues}
    big = by_name["big"]  # found through pg_stats, not a scan
    assert big["succeeded"]["kind"] == "estimate"
    assert big["succeeded"]["value"] >= 1000
    # A small estimate is only "fewer than 1,000": never a made-up "≈7" for a queue with none.
    assert by_name["none-finished"]["succeeded"] == {"value": 1000, "kind": "below"}
    page = http.get("/", headers={**VIEWER, "Accept": "text/html"}).text
    assert "&lt;1,000" in page
    assert "≈7" not in page
    page = http.get("/jobs", headers={**VIEWER, "Accept": "text/html"}).text
    assert "planner estimate" in page


def test_a_database_without_the_schema_is_503_everywhere(serve: Any, server_dsn: str) -> None:
    from psycopg.conninfo import make_conninfo

    name = "pgjobs_web_noschema"
    with psycopg.connect(server_dsn, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}"')
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        server = serve(dsn=make_conninfo(server_dsn, dbname=name))
        for method, path in (
            ("GET", "api/v1/jobs"),
            ("GET", "api/v1/stats"),
            ("GET", "api/v1/workers"),
            ("POST", "api/v1/queues/q/pause"),
            ("POST", "api/v1/jobs/1/retry"),
        ):
            r = httpx.request(method, server.url + path, headers=ADMIN, timeout=15)
            assert r.status_code == 503, path
            assert "pgjobs migrate" in r.json()["error"]["message"], path
        server.stop()
    finally:
        with psycopg.connect(server_dsn, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_a_running_jobs_progress_and_snoozes_show_in_the_api(http: Any, conn: Conn) -> None:
    job = insert_job(
        conn,
        status="running",
        snoozes=2,
        progress='{"done": 40, "total": 100, "message": "chunk 40 of 100", "at": "x"}',
    )
    body = http.get(f"/api/v1/jobs/{job}", headers=VIEWER).json()
    assert body["progress"]["done"] == 40
    assert body["progress"]["message"] == "chunk 40 of 100"
    assert body["snoozes"] == 2
    assert body["cancel_requested_at"] is None
    assert body["cancelled_by"] is None


def test_pausing_or_resuming_a_queue_nobody_knows_is_refused(http: Any, conn: Conn) -> None:
    for action in ("pause", "resume"):
        r = http.post(f"/api/v1/queues/mial/{action}", headers=ADMIN)
        assert r.status_code == 404, r.text
        assert "no queue named 'mial'" in r.json()["error"]["message"]
    assert conn.execute("SELECT count(*) FROM pgjobs.queues").fetchone() == (0,)
    # Known: a queue a task of the App declares (tests/web/app.py: "default"), or
    # one a live worker serves, before any job is in it.
    assert http.post("/api/v1/queues/default/pause", headers=ADMIN).status_code == 200
    conn.execute(
        "INSERT INTO pgjobs.workers (host, pid, queues, concurrency)"
        " VALUES ('h', 1, ARRAY['served'], 1)"
    )
    assert http.post("/api/v1/queues/served/pause", headers=ADMIN).status_code == 200


def test_patch_changes_a_queues_limits_and_lists_them(http: Any, conn: Conn) -> None:
    insert_job(conn, status="queued", queue="exports")
    r = http.patch(
        "/api/v1/queues/exports", json={"concurrency": 5, "rate_limit": "100/m"}, headers=ADMIN
    )
    assert r.status_code == 200, r.text
    assert r.json() == {
        "name": "exports",
        "concurrency": 5,
        "key_concurrency": None,
        "rate_limit": "100/m",
        "rate_burst": None,
        "key_rate_limit": None,
        "key_rate_burst": None,
    }
    # Only what is given changes; null removes a limit (a rate's burst goes with it).
    http.patch("/api/v1/queues/exports", json={"rate_burst": 20}, headers=ADMIN)
    r = http.patch("/api/v1/queues/exports", json={"rate_limit": None}, headers=ADMIN)
    assert (r.json()["concurrency"], r.json()["rate_limit"], r.json()["rate_burst"]) == (
        5,
        None,
        None,
    )
    assert conn.execute(
        "SELECT concurrency, rate_limit, rate_burst, paused FROM pgjobs.queues"
        " WHERE name = 'exports'"
    ).fetchone() == (5, None, None, False)
    listed = {q["name"]: q for q in http.get("/api/v1/queues", headers=VIEWER).json()["queues"]}
    assert (listed["exports"]["concurrency"], listed["exports"]["available"]) == (5, 1)


@pytest.mark.parametrize(
    ("body", "status", "needle"),
    [
        ({"concurrency": 0}, 422, "concurrency must be a positive integer"),
        ({"concurrency": "5"}, 422, "concurrency must be a positive integer"),
        ({"key_concurrency": -1}, 422, "key_concurrency must be a positive integer"),
        ({"rate_limit": "100/min"}, 422, "unknown unit 'min'"),
        ({"rate_burst": 5}, 422, "without a rate_limit"),
        ({"paused": True}, 422, "unknown limit(s) paused"),
        ({}, 422, "give at least one limit"),
    ],
)
def test_patch_bad_limits_are_422_and_change_nothing(
    http: Any, conn: Conn, body: dict[str, Any], status: int, needle: str
) -> None:
    insert_job(conn, status="queued", queue="exports")
    r = http.patch("/api/v1/queues/exports", json=body, headers=ADMIN)
    assert r.status_code == status, r.text
    assert needle in r.json()["error"]["message"]
    assert conn.execute("SELECT count(*) FROM pgjobs.queues").fetchone() == (0,)


def test_patch_limits_needs_an_admin_json_and_a_known_queue(http: Any, conn: Conn) -> None:
    insert_job(conn, status="queued", queue="exports")
    assert (
        http.patch("/api/v1/queues/exports", json={"concurrency": 1}, headers=VIEWER).status_code
        == 403
    )
    r = http.patch(
        "/api/v1/queues/exports",
        content=b'{"concurrency": 1}',
        headers={**ADMIN, "Content-Type": "text/plain"},
    )
    assert r.status_code == 415
    r = http.patch("/api/v1/queues/nope", json={"concurrency": 1}, headers=ADMIN)
    assert r.status_code == 404
    # A lone surrogate never reaches the database: 400, not 500.
    r = http.patch(
        "/api/v1/queues/exports",
        content=b'{"rate_limit": "\\ud800/s"}',
        headers={**ADMIN, "Content-Type": "application/json"},
    )
    assert r.status_code == 400, r.text
    assert conn.execute("SELECT count(*) FROM pgjobs.queues").fetchone() == (0,)


def test_breakers_are_listed(http: Any, conn: Conn) -> None:
    assert http.get("/api/v1/breakers", headers=VIEWER).json() == {"breakers": []}
    conn.execute(
        "INSERT INTO pgjobs.task_breakers (task, failures, cooldown, state, consecutive_failures,"
        " opened_at, retry_at) VALUES ('fragile', 3, 60, 'open', 3, now(), now() + interval '1m')"
    )
    [breaker] = http.get("/api/v1/breakers", headers=VIEWER).json()["breakers"]
    assert (breaker["task"], breaker["state"], breaker["consecutive_failures"]) == (
        "fragile",
        "open",
        3,
    )
    assert 0 < breaker["retry_in_seconds"] <= 60


def test_jobs_search_in_args_and_errors_and_sort_with_pages(http: Any, conn: Conn) -> None:
    errors = '[{"attempt": 1, "type": "ValueError", "message": "SMTP said No", "at": "%s"}]'
    a = insert_job(conn, args='{"user": 7, "tags": ["x"]}', priority=3)
    b = insert_job(conn, args='{"user": 7}', priority=1)
    c = insert_job(conn, args='{"user": 8}', status="failed", errors=errors % "2026-01-01T00:00:00")
    d = insert_job(conn, args='{"user": 7}', priority=1, status="succeeded")

    def ids(**params: str) -> list[int]:
        r = http.get("/api/v1/jobs", params=params, headers=VIEWER)
        assert r.status_code == 200, r.text
        return [j["id"] for j in r.json()["jobs"]]

    assert ids(args='{"user": 7}') == [d, b, a]
    assert ids(args='{"tags": ["x"]}') == [a]
    assert ids(args='{"user": 7}', status="queued") == [b, a]
    assert ids(error="smtp said") == [c]
    assert ids(order="oldest") == [a, b, c, d]
    assert ids(order="priority") == [b, d, c, a]  # priority 1 first, then 2, then 3; ties by id
    # Keyset pages in each order.
    for order, expected in (("oldest", [a, b, c, d]), ("priority", [b, d, c, a])):
        seen, cursor = [], None
        while True:
            params = {"order": order, "limit": "1", **({"cursor": cursor} if cursor else {})}
            body = http.get("/api/v1/jobs", params=params, headers=VIEWER).json()
            seen += [j["id"] for j in body["jobs"]]
            cursor = body["next_cursor"]
            if not cursor:
                break
        assert seen == expected, order
    failed = http.get("/api/v1/jobs", params={"error": "smtp"}, headers=VIEWER).json()["jobs"][0]
    assert failed["last_error_message"] == "SMTP said No"
    assert failed["last_error_at"] == "2026-01-01T00:00:00"
    for params, needle in (
        ({"args": "[1]"}, "non-empty JSON object"),
        ({"args": "{not json"}, "must be a JSON object"),
        ({"order": "sideways"}, "use one of newest, oldest, priority"),
    ):
        r = http.get("/api/v1/jobs", params=params, headers=VIEWER)
        assert r.status_code == 400
        assert needle in r.json()["error"]["message"]
