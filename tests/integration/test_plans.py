"""The worker's hot statements read pgjobs.jobs through an index, whatever plan PostgreSQL picks.

(The admin and dashboard statements at the end are never prepared instead.)

They are prepared, and PostgreSQL switches a prepared statement to a generic
plan (one that cannot see the parameters) after five runs when it looks no
dearer. A generic plan once joined the claimed or completed ids to a
sequential scan of the whole table, on every batch. These tests plan each
statement both ways, on a table big enough for a scan to look cheap but not
to be cheap, and look at the plan, not at a clock.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import re

import psycopg
import pytest
from psycopg.rows import dict_row, tuple_row

from pgjobs import _admin, _sql
from pgjobs._admin import JobFilter
from pgjobs.web import _queries
from pgjobs.worker._dedicated import HotConnection

_START = dt.datetime(1, 1, 1, tzinfo=dt.UTC)

STATEMENTS = {
    "claim": {
        "queues": ["default"],
        "after_priorities": [-1],
        "after_run_ats": [_START],
        "after_ids": [0],
        "limit": 50,
        "worker_id": 1,
    },
    "claim_one_queue": {
        "queue": "default",
        "after_priority": -1,
        "after_run_at": _START,
        "after_id": 0,
        "limit": 50,
        "worker_id": 1,
    },
    # A queue with a limit; the jobs are chosen by pgjobs.claim_limited()
    # (its own statements are checked by the next test).
    "claim_limited": {
        "queue": "default",
        "limit": 50,
        "worker_id": 1,
        "after_turn": None,
        "ended": [],
    },
    # A queue without limits whose jobs have keys: pgjobs.claim_keyed() picks
    # the jobs (keys taking turns; migration 0017).
    "claim_keyed": {"queue": "default", "limit": 50, "worker_id": 1, "after_turn": None},
    "complete": {
        "ids": list(range(1, 51)),
        "attempts": [1] * 50,
        "statuses": ["succeeded"] * 50,
        "delays": [0.0] * 50,
        "errors": [None] * 50,
        "results": [None] * 50,
        "keeps": [True] * 50,
        "snoozes": [False] * 50,
        "worker_id": 1,
    },
    # A transactional task's success, in the handler's transaction.
    "complete_one": {"id": 1, "attempt": 1, "worker_id": 1, "result": None, "keep": True},
    # What running handlers write (pgjobs/worker/_progress.py).
    "progress": {
        "ids": list(range(1, 51)),
        "attempts": [1] * 50,
        "reports": ['{"done": 1}'] * 50,
        "worker_id": 1,
    },
    "checkpoint": {"id": 7, "attempt": 1, "state": '{"step": 3}', "worker_id": 1},
}


def _prepare(conn: psycopg.Connection, name: str, text: str | None = None) -> list[str]:
    """PREPARE the named query (or `text`) with $n placeholders; returns its parameter names."""
    order: list[str] = []

    def number(match: re.Match[str]) -> str:
        if match.group(1) not in order:
            order.append(match.group(1))
        return f"${order.index(match.group(1)) + 1}"

    source = _sql.text(name) if text is None else text
    text = re.sub(r"(?<![:\w]):([A-Za-z_][A-Za-z0-9_]*)", number, source)
    conn.execute(f"PREPARE {name} AS {text}".encode())
    return order


def _forget_statistics(conn: psycopg.Connection) -> None:
    """Put pgjobs.jobs_live back as no ANALYZE has seen it (as in a new database)."""
    conn.execute(
        "DELETE FROM pg_statistic WHERE starelid = 'pgjobs.jobs_live'::regclass"
        " OR starelid IN (SELECT indexrelid FROM pg_index"
        " WHERE indrelid = 'pgjobs.jobs_live'::regclass)"
    )
    conn.execute(
        "UPDATE pg_class SET reltuples = -1 WHERE oid = 'pgjobs.jobs_live'::regclass"
        " OR oid IN (SELECT indexrelid FROM pg_index WHERE indrelid = 'pgjobs.jobs_live'::regclass)"
    )


@pytest.mark.parametrize("statistics", ["current", "none"])
@pytest.mark.parametrize("mode", ["force_generic_plan", "force_custom_plan"])
@pytest.mark.parametrize("name", sorted(STATEMENTS))
def test_hot_statements_never_scan_the_jobs_table(dsn, name, mode, statistics):
    """With statistics, and without them (a new database, before autovacuum's first ANALYZE).

    Without statistics the planner judges by the table's size alone, and
    scanning a few thousand rows is cheaper than 50 index probes: that case
    has ten times as many, where a scan would cost.
    """
    running = 3000 if statistics == "current" else 30000
    with psycopg.connect(dsn) as conn, psycopg.ClientCursor(conn) as cur:
        conn.execute(
            "INSERT INTO pgjobs.workers (id, host, pid, queues, concurrency)"
            " OVERRIDING SYSTEM VALUE VALUES (1, 'h', 1, ARRAY['default'], 50)"
        )
        conn.execute(
            "INSERT INTO pgjobs.jobs_live (task, args, status, worker_id, attempts)"
            " SELECT 't', '{}', 'running', 1, 1 FROM generate_series(1, %s)",
            [running],
        )
        conn.execute(
            "INSERT INTO pgjobs.jobs (task, args) SELECT 't', '{}' FROM generate_series(1, 100)"
        )
        if statistics == "none":
            _forget_statistics(conn)
        else:
            conn.execute("ANALYZE pgjobs.jobs_live, pgjobs.job_history")
        conn.execute(f"SET plan_cache_mode = {mode}")
        order = _prepare(conn, name)
        values = [STATEMENTS[name][param] for param in order]
        placeholders = ", ".join(["%s"] * len(values))
        cur.execute(f"EXPLAIN (ANALYZE, COSTS OFF) EXECUTE {name} ({placeholders})", values)
        plan = "\n".join(row[0] for row in cur.fetchall())
        conn.rollback()
    assert "Seq Scan on jobs" not in plan, plan
    assert "Seq Scan on job_history" not in plan, plan
    # The claimed or finished rows are found through the primary key (an
    # index scan, or a bitmap scan of it for a batch).
    assert re.search(r"Index Scan (using jobs_live_pkey on jobs_live j|on jobs_live_pkey)", plan), (
        plan
    )
    if name in ("claim", "claim_one_queue"):
        # The search starts at the queue's position in the fetch index: both
        # the queue's hash and the row comparison are index conditions.
        # (The domains of migration 0007 show as casts: hashtext((queue)::text).)
        assert re.search(
            r"Index Scan using jobs_live_fetch_idx on jobs_live .*\n"
            r"\s+Index Cond: \(\(hashtext\(\(?queue\)?"
            r"(::text)?\) = .*\(ROW\(\(?priority\)?(::smallint)?, run_at, id\) > ROW\(",
            plan,
        ), plan


@pytest.mark.parametrize("name", ["claim", "claim_one_queue"])
def test_the_claims_keep_their_generic_plan(dsn, name):
    """A claim is planned once, not at every run of the prepared statement.

    PostgreSQL plans a prepared statement's first five runs for their values,
    then keeps a generic plan unless that looks dearer than theirs. With the
    circuit breakers' condition written as `task <> ALL (...)` alone, a queue
    of one task looked almost empty after it, so every claim from a real
    position was planned anew (0 generic plans in 12 runs; ~0.45 ms a claim).
    """
    params = dict(STATEMENTS[name])
    with psycopg.connect(dsn, autocommit=True) as conn, psycopg.ClientCursor(conn) as cur:
        conn.execute(
            "INSERT INTO pgjobs.jobs (task, args) SELECT 't', '{}' FROM generate_series(1, 20000)"
        )
        conn.execute("VACUUM ANALYZE pgjobs.jobs_live")
        priority, run_at, first = conn.execute(
            "SELECT priority, run_at, min(id) FROM pgjobs.jobs_live GROUP BY 1, 2"
        ).fetchone()
        order = _prepare(conn, name)
        cur.execute("BEGIN")
        for run in range(12):
            # Each run starts where the one before left off, as the fetcher's do.
            position = {"priority": priority, "run_at": run_at, "id": first + 50 * run}
            if name == "claim":
                params.update(
                    after_priorities=[position["priority"]],
                    after_run_ats=[position["run_at"]],
                    after_ids=[position["id"]],
                )
            else:
                params.update(
                    after_priority=position["priority"],
                    after_run_at=position["run_at"],
                    after_id=position["id"],
                )
            values = [params[param] for param in order]
            cur.execute(f"EXECUTE {name} ({', '.join(['%s'] * len(values))})", values)
            assert len(cur.fetchall()) == 50
        generic, custom = conn.execute(
            "SELECT generic_plans, custom_plans FROM pg_prepared_statements WHERE name = %s",
            (name,),
        ).fetchone()
        cur.execute("ROLLBACK")
    assert generic >= 6, (generic, custom)
    assert custom <= 6, (generic, custom)


def test_a_worker_claims_with_one_plan_to_the_end_of_a_long_queue(dsn):
    """The worker's own connection plans its claim once: no run is planned for its values.

    Left to choose, PostgreSQL planned a worker's claims anew at almost every
    run once a long drain was under way (a 100,000-job drain: 1,342 custom
    plans and no generic one for the claims from positions past id 32,767,
    which psycopg sends as another type and so prepares apart), at 0.2-0.3 ms
    each. Which plans it picks depends on the statistics of the moment, so
    this checks the cure instead: on the fetcher's connection, even the first
    five runs use the generic plan, whose reads the tests above check.
    """
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO pgjobs.jobs_live (task, args)"
            " SELECT 't', '{}' FROM generate_series(1, 60000)"
        )
        conn.execute("VACUUM ANALYZE pgjobs.jobs_live")
        priority, run_at, last = conn.execute(
            "SELECT priority, run_at, max(id) FROM pgjobs.jobs_live GROUP BY 1, 2"
        ).fetchone()

    async def claims() -> tuple[int, int]:
        hot = HotConnection(dsn)
        try:
            # The fetcher's claims over the last third of the queue, each
            # from the position where the one before it ended.
            after = last - 20_000
            for _ in range(20):
                params = dict(STATEMENTS["claim_one_queue"])
                params.update(after_priority=priority, after_run_at=run_at, after_id=after)
                jobs = await hot.fetch("claim_one_queue", params, tuple_row)
                assert len(jobs) == 50
                after = max(job[0] for job in jobs)
            return await _prepared(hot)
        finally:
            await hot.close()

    generic, custom = asyncio.run(claims())
    assert custom == 0, (generic, custom)
    assert generic >= 15, (generic, custom)


async def _prepared(hot: HotConnection) -> tuple[int, int]:
    """Generic and custom plans made so far for the claims prepared on `hot`'s connection."""
    conn = await hot._connection()
    cur = await conn.execute(
        "SELECT sum(generic_plans), sum(custom_plans) FROM pg_prepared_statements"
        " WHERE statement LIKE '-- pgjobs/sql/claim_one_queue.sql%'"
    )
    row = await cur.fetchone()
    assert row is not None
    return int(row[0]), int(row[1])


@pytest.mark.parametrize("statistics", ["current", "none"])
@pytest.mark.parametrize("mode", ["force_generic_plan", "force_custom_plan"])
@pytest.mark.parametrize(
    "limits",
    ["concurrency = 100", "key_concurrency = 1", "concurrency = 100, rate_limit = '1000/s'"],
)
def test_the_statements_of_a_limited_claim_read_indexes_only(dsn, limits, mode, statistics):
    """pgjobs.claim_limited() counts the running jobs and finds queued ones without a scan.

    Its statements run inside the function, so EXPLAIN of the claim does not
    show them: auto_explain logs the plan of each, and the log level sends it
    to this client as a notice.
    """
    plans: list[str] = []
    with psycopg.connect(dsn) as conn:
        conn.execute(
            "INSERT INTO pgjobs.workers (id, host, pid, queues, concurrency)"
            " OVERRIDING SYSTEM VALUE VALUES (1, 'h', 1, ARRAY['default'], 50)"
        )
        conn.execute(
            "INSERT INTO pgjobs.jobs (task, args, status, worker_id, attempts, key)"
            " SELECT 't', '{}', 'running', 1, 1, 'k' || g % 10 FROM generate_series(1, 50) AS g"
        )
        conn.execute(
            "INSERT INTO pgjobs.jobs (task, args, key)"
            " SELECT 't', '{}', 'k' || g % 100 FROM generate_series(1, 3000) AS g"
        )
        conn.execute(
            "INSERT INTO pgjobs.jobs (task, args, queue)"
            " SELECT 't', '{}', 'other' FROM generate_series(1, 20000)"
        )
        conn.execute("INSERT INTO pgjobs.queues (name) VALUES ('default')")
        conn.execute(f"UPDATE pgjobs.queues SET {limits}")
        if statistics == "none":
            _forget_statistics(conn)
            conn.execute("ANALYZE pgjobs.queues")
        else:
            conn.execute("ANALYZE pgjobs.jobs_live, pgjobs.queues")
        conn.execute(f"SET plan_cache_mode = {mode}")
        conn.execute("LOAD 'auto_explain'")
        conn.execute("SET auto_explain.log_min_duration = 0")
        conn.execute("SET auto_explain.log_nested_statements = on")
        conn.add_notice_handler(lambda notice: plans.append(notice.message_primary or ""))
        conn.execute("SET client_min_messages = log")
        claimed = conn.execute(_sql.psycopg("claim_limited"), STATEMENTS["claim_limited"])
        assert len(claimed.fetchall()) == 50
        conn.rollback()
    nested = "\n".join(plans)
    assert "jobs_live_running_worker_idx" in nested, nested
    assert "jobs_live_fetch_idx" in nested, nested
    assert "Seq Scan on jobs_live" not in nested, nested


@pytest.mark.parametrize("mode", ["force_generic_plan", "force_custom_plan"])
@pytest.mark.parametrize("statistics", ["none", "of an empty table", "without keys", "current"])
def test_the_keys_turns_read_the_keyed_index_whatever_the_statistics(dsn, statistics, mode):
    """pgjobs.claim_turns() finds each key through jobs_live_key_fetch_idx, never by the queue.

    Without statistics on the keys (a new database until autovacuum's first
    ANALYZE, or statistics taken when the table was empty or had no keyed
    job), both of its probes once read the whole queue through the fetch
    index, sorting or filtering it: a claim of 50 jobs from 30,000 took
    half a second (migration 0021). One key holds nearly every
    job here, so a probe for another key that walks the queue reads it all.
    """
    plans: list[dict] = []
    with psycopg.connect(dsn) as conn:
        if statistics == "none":
            _forget_statistics(conn)
        if statistics == "without keys":
            conn.execute(
                "INSERT INTO pgjobs.jobs (task, args, queue)"
                " SELECT 't', '{}', 'other' FROM generate_series(1, 5000)"
            )
        if statistics in ("of an empty table", "without keys"):
            conn.execute("ANALYZE pgjobs.jobs_live")
        conn.execute(
            "INSERT INTO pgjobs.jobs_live (task, args, key)"
            " SELECT 't', '{}', 'a' FROM generate_series(1, 30000)"
        )
        conn.execute(
            "INSERT INTO pgjobs.jobs_live (task, args, key)"
            " SELECT 't', '{}', 'b' || g FROM generate_series(1, 49) AS g"
        )
        if statistics == "current":
            conn.execute("ANALYZE pgjobs.jobs_live")
        conn.commit()
        conn.execute(f"SET plan_cache_mode = {mode}")
        conn.execute("LOAD 'auto_explain'")
        conn.execute("SET auto_explain.log_min_duration = 0")
        conn.execute("SET auto_explain.log_nested_statements = on")
        conn.execute("SET auto_explain.log_format = json")
        conn.add_notice_handler(
            lambda notice: plans.append(
                json.loads((notice.message_primary or "").partition("plan:")[2])
            )
        )
        conn.execute("SET client_min_messages = log")
        claimed = conn.execute(_sql.psycopg("claim_keyed"), STATEMENTS["claim_keyed"])
        assert len(claimed.fetchall()) == 50
        conn.rollback()
    probes = [p for p in plans if "hashtext(j.key)" in p["Query Text"]]
    # The first probe (the next key) and the second (its job), once each per key.
    assert len({p["Query Text"] for p in probes}) == 2, probes
    for probe in probes:
        nodes = json.dumps(probe["Plan"])
        assert '"Index Name": "jobs_live_key_fetch_idx"' in nodes, probe
        assert '"Sort"' not in nodes, probe


# -- admin and dashboard statements ------------------------------------------------
#
# These are never prepared, so PostgreSQL plans every call for its values
# (pgjobs/_admin.py, _rows). Two statements were slow even so, and are
# checked here on the shape that made them slow: a long history of finished
# jobs that all had attempts, a backlog of fresh queued jobs, and a handful
# that are retrying.


def _history(conn: psycopg.Connection) -> None:
    # Finished jobs straight into the history, in one statement each, as
    # the worker's completions write them (the view takes them a row at a time).
    conn.execute(
        "INSERT INTO pgjobs.job_history (task, status, attempts, started_at, finished_at)"
        " SELECT 't', 'succeeded', 1, now(), now() FROM generate_series(1, 60000)"
    )
    conn.execute(
        "INSERT INTO pgjobs.jobs (task, args, run_at)"
        " SELECT 't', '{}', now() - interval '1 minute' FROM generate_series(1, 3000)"
    )
    conn.execute(
        "INSERT INTO pgjobs.jobs (task, args, attempts, run_at)"
        " SELECT 't', '{}', 1, now() - interval '1 minute' FROM generate_series(1, 20)"
    )
    conn.execute(
        "INSERT INTO pgjobs.job_history (task, status, attempts, finished_at, fingerprint)"
        " SELECT 't', 'failed', 3, now(), CASE WHEN g % 2 = 0 THEN 'f' || g END"
        " FROM generate_series(1, 2000) AS g"
    )
    conn.execute("VACUUM ANALYZE pgjobs.jobs_live, pgjobs.job_history")


def _web_text(name: str) -> str:
    return _sql.text(name, "pgjobs.web")


def _explain(conn: psycopg.Connection, name: str, text: str, params: dict, mode: str) -> str:
    conn.execute(f"SET plan_cache_mode = {mode}")
    order = _prepare(conn, name, text)
    with psycopg.ClientCursor(conn) as cur:
        placeholders = ", ".join(["%s"] * len(order))
        values = [params[p] for p in order]
        cur.execute(f"EXPLAIN (COSTS OFF) EXECUTE {name} ({placeholders})", values)
        return "\n".join(row[0] for row in cur.fetchall())


@pytest.mark.parametrize("mode", ["force_generic_plan", "force_custom_plan"])
def test_the_retrying_page_reads_the_fetch_index_not_the_history(dsn, mode):
    params = {"queue": None, "task": None, "before_id": None, "limit": 50}
    with psycopg.connect(dsn, autocommit=True) as conn:
        _history(conn)
        plan = _explain(conn, "retrying", _web_text("jobs_list_retrying"), params, mode)
    # The finished jobs are in another table now, which this never reads;
    # the live one holds the backlog alone, so a scan of it is fair.
    assert "job_history" not in plan, plan
    assert "jobs_live_pkey" not in plan, plan


@pytest.mark.parametrize("page", ["jobs_list_scheduled", "jobs_list_retrying"])
def test_a_queue_filter_on_the_queued_pages_searches_the_fetch_index_by_hash(dsn, page):
    """The fetch index leads with hashtext(queue) (migration 0006)."""
    params = {"queue": "default", "task": None, "before_id": None, "limit": 50}
    with psycopg.connect(dsn, autocommit=True) as conn:
        _history(conn)
        plan = _explain(conn, page, _web_text(page), params, "force_custom_plan")
    assert re.search(
        r"using jobs_live_fetch_idx on jobs_live.*\n\s+Index Cond: \(\(?hashtext", plan
    ), plan


@pytest.mark.parametrize("mode", ["force_generic_plan", "force_custom_plan"])
def test_bulk_retry_checks_fingerprints_with_a_join_not_a_subplan_per_row(dsn, mode):
    params = {"status": "failed", "queue": None, "task": None}
    with psycopg.connect(dsn, autocommit=True) as conn:
        _history(conn)
        plan = _explain(conn, "retry_jobs", _sql.text("admin_retry_jobs"), params, mode)
    assert "Anti Join" in plan, plan
    assert "SubPlan" not in plan, plan


def test_admin_and_dashboard_statements_are_never_prepared(dsn):
    """Prepared, they could be planned generically, blind to which filters are set."""
    where = JobFilter(status="running", queue="default")
    with psycopg.connect(dsn, autocommit=True) as conn:
        for _ in range(12):  # psycopg prepares after 5 runs; PostgreSQL goes generic after 5 more
            _admin.list_jobs(conn, where)
            _admin.stats(conn)
        assert conn.execute("SELECT count(*) FROM pg_prepared_statements").fetchone() == (0,)

    async def dashboard() -> dict[str, int] | None:
        connect = psycopg.AsyncConnection.connect
        async with await connect(dsn, autocommit=True, row_factory=dict_row) as conn:
            for _ in range(12):
                await _admin.list_jobs_async(conn, where)
                await _queries.count_jobs(conn, where)
                await _queries.jobs_in_derived_state(conn, JobFilter(status="retrying"))
            cur = await conn.execute("SELECT count(*) AS n FROM pg_prepared_statements")
            return await cur.fetchone()

    assert asyncio.run(dashboard()) == {"n": 0}


def test_a_worker_of_every_queue_finds_the_queues_through_the_fetch_index(dsn):
    """queued_queues.sql: one probe of the fetch index per queue, never a read of the jobs."""
    with psycopg.connect(dsn) as conn:
        conn.execute(
            "INSERT INTO pgjobs.jobs (task, args, queue)"
            " SELECT 't', '{}', 'q' || (g % 5) FROM generate_series(1, 5000) AS g"
        )
        conn.execute(
            "INSERT INTO pgjobs.jobs (task, args, queue, status)"
            " SELECT 't', '{}', 'done', 'succeeded' FROM generate_series(1, 100)"
        )
        conn.execute("ANALYZE pgjobs.jobs_live, pgjobs.job_history")
        text = _sql.text("queued_queues")
        found = sorted(row[0] for row in conn.execute(text.encode()))
        plan = "\n".join(
            row[0] for row in conn.execute(b"EXPLAIN (ANALYZE, COSTS OFF) " + text.encode())
        )
        conn.rollback()
    assert found == [f"q{i}" for i in range(5)]
    assert "Seq Scan" not in plan, plan
    assert "jobs_live_fetch_idx" in plan, plan
    # One probe for the first queue, then one per queue after it (the last finds none).
    probes = re.findall(r"Index (?:Only )?Scan using jobs_live_fetch_idx .*loops=(\d+)\)", plan)
    assert sorted(int(loops) for loops in probes) == [1, 5], plan
