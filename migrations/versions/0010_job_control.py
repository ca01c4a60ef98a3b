"""Job control: results you can wait for, and cancelling a running job.

- `pgjobs.result_waiters` (job_id, pid): a client waiting in `app.result()`
  for a job puts a row here while it waits. The statements that finish a job
  (complete.sql, rescue.sql, pgjobs.cancel(), the bulk cancel) send
  `pg_notify('pgjobs_done', id)` for the finished ids found here, and for no
  others: the table is almost always empty, so a completion pays one probe of
  an empty index, and no notification is sent for jobs nobody waits for.
- Two columns on both tables, `cancel_requested_at` and `cancelled_by`:
  `pgjobs.cancel(id)` of a running job records the request there and sends
  `pg_notify('pgjobs_control', 'cancel WORKER_ID JOB_ID')`; the worker that
  holds the job stops it, and its outcome is recorded as `cancelled` through
  the fenced completion, whatever the handler returned. A dead worker's
  cancel-requested job is moved to the history as cancelled by the rescuer,
  not put back in the queue. `cancelled_by` says who asked: the SQL role
  (current_user) unless the caller names itself (`pgjobs.cancel(id, 'cli:alice')`).
- `snoozes` (integer, 0 by default) on both tables: a handler that raises
  `pgjobs.Snooze(seconds)` puts its job back in line without counting the
  attempt, and the completion counts the snooze here.
- `progress` and `checkpoint` (jsonb) on both tables: what a running
  handler reports (`current_job().progress()`, written about once a second
  at most) and saves for its next attempt (`current_job().checkpoint()`,
  returned by the claim, cleared when the job succeeds).
- `timeout` (double precision, seconds) on both tables: a job's own
  timeout (`task.options(timeout=...)`), which the claim returns and the
  worker uses instead of its task's. `pgjobs.enqueue()` takes it as a last
  parameter, `timeout DEFAULT NULL`.
- `pgjobs.cancel(job_id, by)` replaces `pgjobs.cancel(job_id)`: a queued job
  is cancelled at once (as before), a running one is asked to stop, a
  finished one is refused. `pgjobs.cancel(id)` still works (by defaults to NULL).

The columns are added to pgjobs.jobs_live and to pgjobs.job_history (the
partitioned parent, which passes them on to every partition), in the same
order, so that `pgjobs.move_finished_to_history()` (SELECT *) stays right.
The view pgjobs.jobs, its INSTEAD OF trigger function and the three views on
it are made again with the new columns (their owner, grants and comments
kept, as in 0007 and 0009).

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-06
"""

import importlib.util
from pathlib import Path
from typing import Any

from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

#: The new columns of both tables, in order: (name, type).
NEW_COLUMNS = (
    ("cancel_requested_at", "timestamptz"),
    ("cancelled_by", "text"),
    ("snoozes", "integer NOT NULL DEFAULT 0"),
    ("progress", "jsonb"),
    ("checkpoint", "jsonb"),
    ("timeout", "double precision"),
)


def _load(name: str) -> Any:
    # Alembic loads revision files by path, so they are not importable as a package.
    path = Path(__file__).with_name(name)
    spec = importlib.util.spec_from_file_location(f"pgjobs_migration_{path.stem}", path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_STATES_VIEW = """
SELECT j.*,
       CASE
           WHEN j.status = 'queued' AND j.attempts > 0 THEN 'retrying'
           WHEN j.status = 'queued' AND j.run_at > now() THEN 'scheduled'
           ELSE j.status::text
       END AS state
FROM pgjobs.jobs j
"""

_WAITERS = """
CREATE TABLE pgjobs.result_waiters (
    job_id bigint NOT NULL,
    pid integer NOT NULL DEFAULT pg_backend_pid(),
    since timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (job_id, pid)
);

COMMENT ON TABLE pgjobs.result_waiters IS
    'Jobs a client waits on (app.result): their completion notifies channel pgjobs_done with the id. Almost always empty.';

CREATE FUNCTION pgjobs.notify_done(ids bigint[]) RETURNS void
LANGUAGE sql AS $$
    SELECT count(pg_notify('pgjobs_done', CAST(w.job_id AS text)))
    FROM (SELECT DISTINCT job_id FROM pgjobs.result_waiters WHERE job_id = ANY (ids)) AS w
$$;

COMMENT ON FUNCTION pgjobs.notify_done(bigint[]) IS
    'Tell the clients waiting on any of these (finished) jobs: a notification on channel pgjobs_done with each id.';
"""

_CANCEL = """
DROP FUNCTION pgjobs.cancel(bigint);

CREATE FUNCTION pgjobs.cancel(job_id bigint, by text DEFAULT NULL) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    current pgjobs.job_status;
    holder bigint;
    asked timestamptz;
    who text := coalesce(by, CAST(current_user AS text));
BEGIN
    SELECT status, worker_id, cancel_requested_at INTO current, holder, asked
    FROM pgjobs.jobs_live WHERE id = job_id FOR UPDATE;
    IF NOT FOUND THEN
        SELECT status INTO current FROM pgjobs.job_history WHERE id = job_id;
    END IF;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'pgjobs: no job with id %', job_id
            USING ERRCODE = 'no_data_found', HINT = 'List jobs with: SELECT id, status FROM pgjobs.jobs';
    END IF;
    IF current = 'running' THEN
        -- Asked once: a second cancel changes nothing but reminds the worker.
        IF asked IS NULL THEN
            UPDATE pgjobs.jobs_live SET cancel_requested_at = now(), cancelled_by = who
             WHERE id = job_id;
        END IF;
        PERFORM pg_notify('pgjobs_control', format('cancel %s %s', holder, job_id));
        RETURN;
    END IF;
    IF current <> 'queued' THEN
        RAISE EXCEPTION 'pgjobs: job % is % already, only queued or running jobs can be cancelled', job_id, current
            USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;
    PERFORM pgjobs.history_partition_for('cancelled', now());
    WITH moved AS (DELETE FROM pgjobs.jobs_live WHERE id = job_id RETURNING *)
    INSERT INTO pgjobs.job_history ({columns})
    SELECT id, queue, task, args, priority, 'cancelled', run_at, attempts, max_attempts, fingerprint,
           worker_id, started_at, created_at, now(), errors, result, meta,
           now(), who, snoozes, progress, checkpoint, timeout
    FROM moved;
    PERFORM pgjobs.notify_done(ARRAY[job_id]);
END
$$;

COMMENT ON FUNCTION pgjobs.cancel(bigint, text) IS
    'Cancel a queued job, or ask the worker running a job to stop it (it ends cancelled); by names who asked (default: current_user).';
"""


def _enqueue_sql(m0009: Any) -> str:
    # 0009's pgjobs.enqueue(), with a last parameter: the job's own timeout.
    start = m0009._ENQUEUE_FUNCTIONS.index("CREATE OR REPLACE FUNCTION pgjobs.enqueue(")
    end = m0009._ENQUEUE_FUNCTIONS.index("CREATE OR REPLACE FUNCTION pgjobs.enqueue_many(")
    text = m0009._ENQUEUE_FUNCTIONS[start:end]
    text = _replaced(
        text,
        "meta jsonb DEFAULT '{}'::jsonb) RETURNS bigint",
        "meta jsonb DEFAULT '{}'::jsonb, timeout double precision DEFAULT NULL) RETURNS bigint",
    )
    text = _replaced(
        text,
        "(task, args, queue, priority, run_at, fingerprint, max_attempts, meta)\n    VALUES (",
        "(task, args, queue, priority, run_at, fingerprint, max_attempts, meta,\n"
        "                                  timeout)\n    VALUES (",
    )
    text = _replaced(
        text,
        "        coalesce(enqueue.meta, '{}'::jsonb)\n    )",
        "        coalesce(enqueue.meta, '{}'::jsonb),\n        enqueue.timeout\n    )",
    )
    return (
        "DROP FUNCTION pgjobs.enqueue(text, jsonb, text, integer, timestamptz, text, integer, jsonb);\n"
        + text.replace("CREATE OR REPLACE FUNCTION", "CREATE FUNCTION", 1)
    )


def _replaced(text: str, old: str, new: str) -> str:
    if old not in text:
        raise RuntimeError(f"migration 0010: {old!r} not found in 0009's SQL")
    return text.replace(old, new)


def _retry_sql(m0009: Any, columns: str) -> str:
    # 0009's retry(), writing the new columns too: a retried job is no longer
    # asked to stop, and starts its snoozes again.
    start = m0009._MOVE_FUNCTIONS.index("CREATE OR REPLACE FUNCTION pgjobs.retry")
    end = m0009._MOVE_FUNCTIONS.index("CREATE OR REPLACE FUNCTION pgjobs.cancel")
    text = m0009._MOVE_FUNCTIONS[start:end]
    text = _replaced(
        text,
        "finished_at = NULL, worker_id = NULL\n",
        "finished_at = NULL, worker_id = NULL,\n"
        "               cancel_requested_at = NULL, cancelled_by = NULL, snoozes = 0\n",
    )
    text = _replaced(
        text,
        "INSERT INTO pgjobs.jobs_live (id, queue, task, args, priority, status, run_at, attempts,\n"
        "                                      max_attempts, fingerprint, worker_id, started_at, created_at,\n"
        "                                      finished_at, errors, result, meta)",
        f"INSERT INTO pgjobs.jobs_live ({columns})",
    )
    return _replaced(
        text,
        "NULL, started_at, created_at, NULL, errors, result, meta\n",
        "NULL, started_at, created_at, NULL, errors, result, meta, NULL, NULL, 0,"
        " progress, checkpoint, timeout\n",
    )


def _rebuild(m0007: Any, m0009: Any, columns: str) -> None:
    """Make the view pgjobs.jobs, its trigger and the views on it again, over `columns`."""
    m0007._save_and_drop_views()
    op.execute("DROP VIEW pgjobs.jobs")  # its INSTEAD OF trigger goes with it
    op.execute(m0009._views_sql().replace(m0009._COLUMNS, columns))
    op.execute("ALTER VIEW pgjobs.jobs ALTER COLUMN snoozes SET DEFAULT 0")
    op.execute(
        m0009._VIEW_WRITES.replace(m0009._COLUMNS, columns).replace(
            "CREATE FUNCTION", "CREATE OR REPLACE FUNCTION"
        )
    )
    # job_states was saved with j.* spelled out as the old columns: made over
    # the new ones instead (its owner, grants and comment still restored).
    op.execute(
        "UPDATE pgjobs_migration_views SET body = $v$" + _STATES_VIEW + "$v$"
        " WHERE name = 'job_states'"
    )
    m0007._restore_views()


def upgrade() -> None:
    m0007 = _load("0007_column_checks_as_domains.py")
    m0009 = _load("0009_live_table_and_history.py")
    columns = m0009._COLUMNS + "".join(f", {name}" for name, _ in NEW_COLUMNS)
    op.execute("SET LOCAL lock_timeout = '10s'")
    op.execute("LOCK TABLE pgjobs.jobs_live IN ACCESS EXCLUSIVE MODE")
    for table in ("jobs_live", "job_history"):
        adds = ", ".join(f"ADD COLUMN {name} {kind}" for name, kind in NEW_COLUMNS)
        op.execute(f"ALTER TABLE pgjobs.{table} {adds}")
    _rebuild(m0007, m0009, columns)
    op.execute(_WAITERS)
    op.execute(_CANCEL.replace("{columns}", columns))
    op.execute(_retry_sql(m0009, columns))
    op.execute(_enqueue_sql(m0009))


def downgrade() -> None:
    m0007 = _load("0007_column_checks_as_domains.py")
    m0009 = _load("0009_live_table_and_history.py")
    op.execute("SET LOCAL lock_timeout = '10s'")
    op.execute("LOCK TABLE pgjobs.jobs_live IN ACCESS EXCLUSIVE MODE")
    op.execute("DROP FUNCTION pgjobs.cancel(bigint, text)")
    op.execute(
        "DROP FUNCTION pgjobs.enqueue(text, jsonb, text, integer, timestamptz, text, integer,"
        " jsonb, double precision)"
    )
    op.execute(m0009._ENQUEUE_FUNCTIONS)
    op.execute("DROP FUNCTION pgjobs.notify_done(bigint[])")
    op.execute("DROP TABLE pgjobs.result_waiters")
    m0007._save_and_drop_views()
    op.execute("DROP VIEW pgjobs.jobs")
    for table in ("jobs_live", "job_history"):
        drops = ", ".join(f"DROP COLUMN {name}" for name, _ in NEW_COLUMNS)
        op.execute(f"ALTER TABLE pgjobs.{table} {drops}")
    op.execute(m0009._views_sql())
    op.execute(
        m0009._VIEW_WRITES.replace("CREATE FUNCTION", "CREATE OR REPLACE FUNCTION")
    )
    op.execute(
        "UPDATE pgjobs_migration_views SET body = $v$" + _STATES_VIEW + "$v$"
        " WHERE name = 'job_states'"
    )
    m0007._restore_views()
    op.execute(m0009._MOVE_FUNCTIONS)
