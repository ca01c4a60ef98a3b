"""Flow control: a concurrency limit per queue and per key, across every worker.

- `pgjobs.queues` gets `concurrency` and `key_concurrency` (integer, NULL for
  no limit), each with a CHECK that refuses zero and negative values: at
  most `concurrency` jobs of the queue run at once, and at most
  `key_concurrency` jobs of one key. `app.queue(...)` writes them when a
  worker starts; an UPDATE changes them live.
- A `key` column on both tables, of the domain `pgjobs.job_key` (1 to 255
  characters): what `key_concurrency` counts by. `pgjobs.enqueue()` takes it
  as a last parameter, `key DEFAULT NULL`.
- `pgjobs.claim_limited(queue, max_jobs)`: the ids of the jobs a claim of a
  limited queue may take, never more than its limits leave. The claim of
  claim_limited.sql updates them (see there). It is a function because its
  statements must each read a snapshot taken after the queue's row lock was
  granted: in one statement, a claim that waited for the lock would count
  the running jobs as they were before the claim it waited for committed,
  and overshoot the limit by that claim's jobs.

The column is added to pgjobs.jobs_live and to pgjobs.job_history after
0010's, in the same order on both, and the view pgjobs.jobs, its INSTEAD OF
trigger and the three views on it are made again, as 0010 does;
pgjobs.cancel() and pgjobs.retry(), which name the columns, carry the key.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-06
"""

import importlib.util
from pathlib import Path
from typing import Any

from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

#: The longest key (pgjobs/_options.py says the same to the client).
MAX_KEY = 255

_QUEUE_LIMITS = """
ALTER TABLE pgjobs.queues
    ADD COLUMN concurrency integer CONSTRAINT queues_concurrency_positive CHECK (concurrency > 0),
    ADD COLUMN key_concurrency integer
        CONSTRAINT queues_key_concurrency_positive CHECK (key_concurrency > 0);

COMMENT ON COLUMN pgjobs.queues.concurrency IS
    'At most this many jobs of the queue run at once, across every worker; NULL: no limit.';
COMMENT ON COLUMN pgjobs.queues.key_concurrency IS
    'At most this many jobs of one key (jobs.key) of the queue run at once; NULL: no limit.';
"""

_KEY_DOMAIN = f"""
CREATE DOMAIN pgjobs.job_key AS text
    CONSTRAINT job_key_valid CHECK (VALUE <> '' AND length(VALUE) <= {MAX_KEY});
"""

# Claims of one limited queue are serialised on its row in pgjobs.queues;
# each statement after the lock takes a new snapshot (a VOLATILE PL/pgSQL
# function under READ COMMITTED), so the running jobs counted include those
# of the claim that held the lock before. The lock is held until the claim's
# transaction ends, that is until its UPDATE has made the chosen jobs running.
#
# No job row is locked here: every claimer of this queue waits for the queue
# row, and the fast claims (claim.sql, claim_one_queue.sql) skip a queue with
# a limit. The UPDATE checks that each job is still queued.
#
# Running jobs are counted through the partial index of running jobs by
# worker (all running jobs, bounded by the workers' slots). With a key limit,
# the queued jobs of the queue are numbered per key in claim order, after the
# key's running jobs (its place), and a job is taken when its key has room
# left; jobs without a key are limited by the queue's concurrency only.
# Within a priority the keys take turns: every key's next job (lowest place
# first, so the keys running fewest jobs) before any key's one after, and a
# job without a key counts as its own key's next. That reads every queued job
# of the queue on each claim.
_CLAIM_LIMITED = """
CREATE FUNCTION pgjobs.claim_limited(queue_name text, max_jobs integer) RETURNS bigint[]
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    cap integer;
    key_cap integer;
    free integer;
    ids bigint[];
BEGIN
    SELECT q.concurrency, q.key_concurrency INTO cap, key_cap
      FROM pgjobs.queues AS q
     WHERE q.name = queue_name AND NOT q.paused
       FOR NO KEY UPDATE;
    IF NOT FOUND THEN
        RETURN '{}';
    END IF;
    free := max_jobs;
    IF cap IS NOT NULL THEN
        SELECT least(max_jobs, cap - count(*)) INTO free
          FROM pgjobs.jobs_live AS j
         WHERE j.status = 'running' AND j.queue = queue_name;
    END IF;
    IF free <= 0 THEN
        RETURN '{}';
    END IF;
    IF key_cap IS NULL THEN
        SELECT array_agg(c.id) INTO ids
          FROM (SELECT j.id
                  FROM pgjobs.jobs_live AS j
                 WHERE j.status = 'queued'
                   AND hashtext(j.queue) = hashtext(queue_name)
                   AND j.queue = queue_name
                   AND j.run_at <= now()
                 ORDER BY j.priority, j.run_at, j.id
                 LIMIT free) AS c;
    ELSE
        WITH busy AS (
            SELECT j.key, count(*) AS n
              FROM pgjobs.jobs_live AS j
             WHERE j.status = 'running' AND j.queue = queue_name AND j.key IS NOT NULL
             GROUP BY j.key
        ), ranked AS (
            SELECT j.id, j.priority, j.run_at, j.key,
                   coalesce(b.n, 0)
                   + row_number() OVER (PARTITION BY j.key ORDER BY j.priority, j.run_at, j.id)
                       AS place
              FROM pgjobs.jobs_live AS j
              LEFT JOIN busy AS b ON b.key = j.key
             WHERE j.status = 'queued'
               AND hashtext(j.queue) = hashtext(queue_name)
               AND j.queue = queue_name
               AND j.run_at <= now()
               AND (j.key IS NULL OR coalesce(b.n, 0) < key_cap)
        )
        SELECT array_agg(c.id) INTO ids
          FROM (SELECT r.id
                  FROM ranked AS r
                 WHERE r.key IS NULL OR r.place <= key_cap
                 ORDER BY r.priority, CASE WHEN r.key IS NULL THEN 1 ELSE r.place END,
                          r.run_at, r.id
                 LIMIT free) AS c;
    END IF;
    RETURN coalesce(ids, '{}');
END
$$;

COMMENT ON FUNCTION pgjobs.claim_limited(text, integer) IS
    'The ids of up to max_jobs queued jobs of a queue with a concurrency or key_concurrency limit that '
    'may start now without exceeding it; the caller makes them running in the same transaction.';
"""


def _load(name: str) -> Any:
    # Alembic loads revision files by path, so they are not importable as a package.
    path = Path(__file__).with_name(name)
    spec = importlib.util.spec_from_file_location(f"pgjobs_migration_{path.stem}", path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _replaced(text: str, old: str, new: str) -> str:
    if old not in text:
        raise RuntimeError(f"migration 0012: {old!r} not found in 0010's SQL")
    return text.replace(old, new)


def _columns(m0009: Any, m0010: Any) -> str:
    return m0009._COLUMNS + "".join(f", {name}" for name, _ in m0010.NEW_COLUMNS)


def _enqueue_sql(m0009: Any, m0010: Any) -> str:
    # 0010's pgjobs.enqueue(), with a last parameter: the job's key.
    text = m0010._enqueue_sql(m0009).split("\n", 1)[1]  # without its DROP of 0009's
    text = _replaced(
        text,
        "timeout double precision DEFAULT NULL) RETURNS bigint",
        "timeout double precision DEFAULT NULL, key text DEFAULT NULL) RETURNS bigint",
    )
    text = _replaced(
        text,
        "                                  timeout)\n    VALUES (",
        "                                  timeout, key)\n    VALUES (",
    )
    text = _replaced(
        text,
        "        enqueue.timeout\n    )",
        "        enqueue.timeout,\n        enqueue.key\n    )",
    )
    return (
        "DROP FUNCTION pgjobs.enqueue(text, jsonb, text, integer, timestamptz, text, integer,"
        " jsonb, double precision);\n" + text
    )


def _cancel_sql(m0010: Any, columns: str) -> str:
    # 0010's pgjobs.cancel(), carrying the key to the history.
    text = m0010._CANCEL.replace("{columns}", columns)
    text = _replaced(text, "DROP FUNCTION pgjobs.cancel(bigint);\n", "")
    text = _replaced(text, "CREATE FUNCTION pgjobs.cancel(", "CREATE OR REPLACE FUNCTION pgjobs.cancel(")
    return _replaced(
        text,
        "progress, checkpoint, timeout\n    FROM moved;",
        "progress, checkpoint, timeout, key\n    FROM moved;",
    )


def _retry_sql(m0009: Any, m0010: Any, columns: str) -> str:
    # 0010's pgjobs.retry(), carrying the key back to the live table.
    text = m0010._retry_sql(m0009, columns)
    return _replaced(
        text,
        " progress, checkpoint, timeout\n",
        " progress, checkpoint, timeout, key\n",
    )


def upgrade() -> None:
    m0007 = _load("0007_column_checks_as_domains.py")
    m0009 = _load("0009_live_table_and_history.py")
    m0010 = _load("0010_job_control.py")
    old_columns = _columns(m0009, m0010)
    columns = old_columns + ", key"
    op.execute("SET LOCAL lock_timeout = '10s'")
    op.execute("LOCK TABLE pgjobs.jobs_live IN ACCESS EXCLUSIVE MODE")
    op.execute(_QUEUE_LIMITS)
    op.execute(_KEY_DOMAIN)
    for table in ("jobs_live", "job_history"):
        op.execute(f"ALTER TABLE pgjobs.{table} ADD COLUMN key pgjobs.job_key")
    m0010._rebuild(m0007, m0009, columns)
    op.execute(_cancel_sql(m0010, columns))
    op.execute(_retry_sql(m0009, m0010, columns))
    op.execute(_enqueue_sql(m0009, m0010))
    op.execute(_CLAIM_LIMITED)


def downgrade() -> None:
    m0007 = _load("0007_column_checks_as_domains.py")
    m0009 = _load("0009_live_table_and_history.py")
    m0010 = _load("0010_job_control.py")
    old_columns = _columns(m0009, m0010)
    op.execute("SET LOCAL lock_timeout = '10s'")
    op.execute("LOCK TABLE pgjobs.jobs_live IN ACCESS EXCLUSIVE MODE")
    op.execute("DROP FUNCTION pgjobs.claim_limited(text, integer)")
    op.execute(
        "DROP FUNCTION pgjobs.enqueue(text, jsonb, text, integer, timestamptz, text, integer,"
        " jsonb, double precision, text)"
    )
    op.execute(m0010._enqueue_sql(m0009).split("\n", 1)[1])
    m0007._save_and_drop_views()
    op.execute("DROP VIEW pgjobs.jobs")
    for table in ("jobs_live", "job_history"):
        op.execute(f"ALTER TABLE pgjobs.{table} DROP COLUMN key")
    op.execute("DROP DOMAIN pgjobs.job_key")
    # 0010's view, trigger and functions, over 0010's columns.
    op.execute(m0009._views_sql().replace(m0009._COLUMNS, old_columns))
    op.execute("ALTER VIEW pgjobs.jobs ALTER COLUMN snoozes SET DEFAULT 0")
    op.execute(
        m0009._VIEW_WRITES.replace(m0009._COLUMNS, old_columns).replace(
            "CREATE FUNCTION", "CREATE OR REPLACE FUNCTION"
        )
    )
    op.execute(
        "UPDATE pgjobs_migration_views SET body = $v$" + m0010._STATES_VIEW + "$v$"
        " WHERE name = 'job_states'"
    )
    m0007._restore_views()
    op.execute(
        _replaced(
            m0010._CANCEL.replace("{columns}", old_columns),
            "DROP FUNCTION pgjobs.cancel(bigint);\n",
            "",
        ).replace("CREATE FUNCTION pgjobs.cancel(", "CREATE OR REPLACE FUNCTION pgjobs.cancel(")
    )
    op.execute(m0010._retry_sql(m0009, old_columns))
    op.execute(
        "ALTER TABLE pgjobs.queues DROP COLUMN concurrency, DROP COLUMN key_concurrency"
    )
