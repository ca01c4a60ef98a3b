"""Workflows: a job can wait for other jobs (`depends_on`) in a new `blocked` status.

- The status `blocked` (`pgjobs.job_status`): a job waiting for its parents.
  It lives in pgjobs.jobs_live, and is never claimed: every claim, and the
  fetch index, take `status = 'queued'` only. It never reaches the history,
  so it has no history partition.
- `pgjobs.job_dependencies (parent_id, job_id)`: one row per parent a blocked
  job still waits for. A row goes when its parent ends: a success deletes it,
  and the job is queued when it was its last; a failure or a cancel deletes
  it and cancels the job, and so on down. With no workflow in flight the
  table is empty.
- `pgjobs.pending_parents(parents)`: what an enqueue with `depends_on` calls
  (pgjobs/sql/enqueue_blocked.sql). It refuses an id that is no job, or one
  that failed or was cancelled, and returns the parents not yet succeeded,
  holding a KEY SHARE lock on each until the enqueue commits. A parent's
  completion deletes its row, which that lock holds back, so the completion
  sees the new job's dependency rows once it may go on; and a completion
  that went first is seen by the history lookup, a statement after the lock.
- `pgjobs.resolve_dependents(succeeded, ended)`: called in the transaction
  of every outcome (complete.sql, complete_one.sql, rescue.sql,
  pgjobs.cancel(), admin_cancel_jobs.sql) with the ids that succeeded and
  the ids that failed or were cancelled. With no dependency row for them it
  returns after one probe of each of the two indexes of an (empty) table.
  Otherwise it queues the dependents left without parents and cancels, level
  by level, the dependents of the jobs that did not succeed. It is a
  function so that each step reads a snapshot taken after its row locks were
  granted: two parents of one job finishing at once lock that job, and the
  second to get the lock sees the first's deletion, so one of them queues it.
- `pgjobs.add_dependencies(job_id, parents)`: depends_on from SQL, for a
  job just written by pgjobs.enqueue() in the same transaction.
- `pgjobs.cancel()` cancels a blocked job as it does a queued one.

Only new objects and `CREATE OR REPLACE` of pgjobs.cancel(): no column is
added, so pgjobs.jobs and the views on it stay as 0012 made them.

ALTER TYPE ... ADD VALUE runs in the migration's transaction (PostgreSQL 12
and later allow it); the new value may not be used before that transaction
commits, so nothing here uses it outside PL/pgSQL bodies, which are only
planned when called.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-06
"""

import importlib.util
from pathlib import Path
from typing import Any

from alembic import op

# The revision, in one place (renumbering this migration changes these two).
revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

_TABLE = """
CREATE TABLE pgjobs.job_dependencies (
    parent_id bigint NOT NULL,
    job_id bigint NOT NULL,
    PRIMARY KEY (parent_id, job_id)
);
CREATE INDEX job_dependencies_job_idx ON pgjobs.job_dependencies (job_id);

COMMENT ON TABLE pgjobs.job_dependencies IS
    'The parents each blocked job still waits for: a row goes when its parent ends. Empty with no workflow in flight.';
"""

_PENDING = """
CREATE FUNCTION pgjobs.pending_parents(parents bigint[]) RETURNS bigint[]
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    wanted bigint[];
    live bigint[];
    bad record;
    missing bigint;
BEGIN
    SELECT coalesce(array_agg(DISTINCT p), '{}') INTO wanted FROM unnest(parents) AS p;
    -- The live parents, held until this transaction ends: a parent's
    -- completion (a DELETE of its row) waits, then sees this job's rows.
    SELECT coalesce(array_agg(l.id ORDER BY l.id), '{}') INTO live
      FROM (SELECT j.id FROM pgjobs.jobs_live AS j
             WHERE j.id = ANY (wanted) AND j.status IN ('queued', 'running', 'blocked')
             ORDER BY j.id
               FOR KEY SHARE) AS l;
    -- A new snapshot: a parent whose completion committed while the lock
    -- above waited is in the history now.
    SELECT h.id, h.status INTO bad
      FROM pgjobs.jobs AS h
     WHERE h.id = ANY (wanted) AND h.id <> ALL (live) AND h.status IN ('failed', 'cancelled')
     ORDER BY h.id LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'pgjobs: depends_on names job %, which is % already, so this job could never run',
            bad.id, bad.status
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = 'Retry that job first (pgjobs.retry), or leave it out of depends_on.';
    END IF;
    SELECT p INTO missing
      FROM unnest(wanted) AS p
     WHERE p <> ALL (live)
       AND NOT EXISTS (SELECT 1 FROM pgjobs.jobs AS h WHERE h.id = p AND h.status = 'succeeded')
     ORDER BY p LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'pgjobs: depends_on names job %, which does not exist', missing
            USING ERRCODE = 'foreign_key_violation',
                  HINT = 'Enqueue the parent first (in the same transaction is fine). A job whose '
                         'task keeps no history (keep_history=False) is gone once it succeeds.';
    END IF;
    RETURN live;
END
$$;

COMMENT ON FUNCTION pgjobs.pending_parents(bigint[]) IS
    'For an enqueue with depends_on: the parents that have not succeeded yet, locked until commit; '
    'raises for an id that is no job, or one that failed or was cancelled.';
"""

# The SQL side of depends_on, for a job pgjobs.enqueue() wrote in the same
# transaction (before any worker can see it). A job that others depend on
# already is refused: it could then wait for its own dependents.
_ADD = """
CREATE FUNCTION pgjobs.add_dependencies(target bigint, parents bigint[]) RETURNS bigint
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    current pgjobs.job_status;
    print text;
    wanted bigint[];
    pending bigint[];
BEGIN
    SELECT coalesce(array_agg(p ORDER BY n), '{}') INTO wanted
      FROM (SELECT p, min(n) AS n FROM unnest(parents) WITH ORDINALITY AS u (p, n)
             WHERE p IS NOT NULL GROUP BY p) AS d;
    IF cardinality(wanted) = 0 THEN
        RAISE EXCEPTION 'pgjobs: depends_on is empty'
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Name the jobs to wait for: pgjobs.add_dependencies(job_id, ARRAY[...]).';
    END IF;
    SELECT j.status, j.fingerprint INTO current, print
      FROM pgjobs.jobs_live AS j WHERE j.id = target FOR UPDATE;
    IF NOT FOUND OR current <> 'queued' THEN
        RAISE EXCEPTION 'pgjobs: job % is %, only a queued job can be made to wait for others',
            target, coalesce(CAST(current AS text), 'not live')
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = 'Call it in the transaction that enqueues the job: '
                         'SELECT pgjobs.add_dependencies(pgjobs.enqueue(...), ARRAY[...]).';
    END IF;
    IF print IS NOT NULL THEN
        RAISE EXCEPTION 'pgjobs: job % has a fingerprint; a job with depends_on cannot have one', target
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF target = ANY (wanted)
       OR EXISTS (SELECT 1 FROM pgjobs.job_dependencies AS d WHERE d.parent_id = target) THEN
        RAISE EXCEPTION 'pgjobs: job % cannot wait for itself, nor once other jobs wait for it', target
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Give a job its dependencies before enqueuing the jobs that depend on it.';
    END IF;
    pending := pgjobs.pending_parents(wanted);
    UPDATE pgjobs.jobs_live AS j
       SET meta = j.meta || jsonb_build_object('depends_on', to_jsonb(wanted)),
           status = CASE WHEN cardinality(pending) > 0 THEN 'blocked' ELSE j.status END
     WHERE j.id = target;
    INSERT INTO pgjobs.job_dependencies (parent_id, job_id)
    SELECT p, target FROM unnest(pending) AS p;
    RETURN target;
END
$$;

COMMENT ON FUNCTION pgjobs.add_dependencies(bigint, bigint[]) IS
    'Make a queued job (enqueued in this transaction) wait for parents, as depends_on does; returns its id.';
"""

# The columns of 0012, which the cancelled dependents are written with (a
# column a later migration adds takes its default).
_COLUMNS = (
    "id, queue, task, args, priority, status, run_at, attempts, max_attempts, fingerprint,"
    " worker_id, started_at, created_at, finished_at, errors, result, meta, cancel_requested_at,"
    " cancelled_by, snoozes, progress, checkpoint, timeout, key"
)

_RESOLVE = f"""
CREATE FUNCTION pgjobs.resolve_dependents(succeeded bigint[], ended bigint[]) RETURNS integer
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    children bigint[];
    doomed bigint[] := coalesce(ended, '{{}}');
    changed integer := 0;
    n integer;
BEGIN
    succeeded := coalesce(succeeded, '{{}}');
    IF NOT EXISTS (SELECT 1 FROM pgjobs.job_dependencies WHERE parent_id = ANY (succeeded || doomed))
       AND NOT EXISTS (SELECT 1 FROM pgjobs.job_dependencies WHERE job_id = ANY (doomed)) THEN
        RETURN 0;
    END IF;
    -- Succeeded parents: their rows go, and a dependent left with none is queued.
    WITH gone AS (
        DELETE FROM pgjobs.job_dependencies WHERE parent_id = ANY (succeeded) RETURNING job_id
    )
    SELECT coalesce(array_agg(DISTINCT job_id), '{{}}') INTO children FROM gone;
    IF cardinality(children) > 0 THEN
        -- Locked first, in id order; the UPDATE's snapshot, taken after, sees
        -- the rows deleted by the completions that held these locks before.
        PERFORM 1 FROM pgjobs.jobs_live WHERE id = ANY (children) ORDER BY id FOR NO KEY UPDATE;
        WITH ready AS (
            UPDATE pgjobs.jobs_live AS j SET status = 'queued'
             WHERE j.id = ANY (children)
               AND j.status = 'blocked'
               AND NOT EXISTS (SELECT 1 FROM pgjobs.job_dependencies AS d WHERE d.job_id = j.id)
            RETURNING j.queue, j.run_at
        ), woken AS (
            SELECT count(pgjobs.wake(queue)) AS w
              FROM (SELECT DISTINCT queue FROM ready WHERE run_at <= now()) AS due
        )
        SELECT count(*) INTO n FROM ready, woken;
        changed := changed + n;
    END IF;
    -- Parents that failed or were cancelled (or a blocked job cancelled
    -- itself): their dependents are cancelled, then those's, and so on.
    WHILE cardinality(doomed) > 0 LOOP
        DELETE FROM pgjobs.job_dependencies WHERE job_id = ANY (doomed);
        WITH gone AS (
            DELETE FROM pgjobs.job_dependencies WHERE parent_id = ANY (doomed)
            RETURNING job_id
        )
        SELECT coalesce(array_agg(DISTINCT job_id), '{{}}') INTO children FROM gone;
        EXIT WHEN cardinality(children) = 0;
        PERFORM 1 FROM pgjobs.jobs_live WHERE id = ANY (children) ORDER BY id FOR UPDATE;
        PERFORM pgjobs.history_partition_for('cancelled', now());
        WITH moved AS (
            DELETE FROM pgjobs.jobs_live WHERE id = ANY (children) AND status = 'blocked'
            RETURNING *
        ), kept AS (
            INSERT INTO pgjobs.job_history ({_COLUMNS})
            SELECT id, queue, task, args, priority, 'cancelled', run_at, attempts, max_attempts,
                   fingerprint, worker_id, started_at, created_at, now(),
                   errors || jsonb_build_array(jsonb_build_object(
                       'attempt', attempts, 'at', now(), 'type', 'pgjobs.DependencyFailed',
                       'message', 'a job this job depends on failed or was cancelled',
                       'traceback', NULL)),
                   result, meta, now(), 'pgjobs:depends_on', snoozes, progress, checkpoint,
                   timeout, key
              FROM moved
            RETURNING id
        )
        SELECT coalesce(array_agg(id), '{{}}') INTO doomed FROM kept;
        PERFORM pgjobs.notify_done(doomed);
        changed := changed + cardinality(doomed);
    END LOOP;
    RETURN changed;
END
$$;

COMMENT ON FUNCTION pgjobs.resolve_dependents(bigint[], bigint[]) IS
    'Called with the outcome of jobs: queues the blocked jobs whose last parent succeeded, and '
    'cancels (recursively) those of jobs that failed or were cancelled; returns how many changed.';
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
        raise RuntimeError(f"migration {revision}: {old!r} not found in 0012's SQL")
    return text.replace(old, new)


def _cancel_sql(blocked: bool) -> str:
    """0012's pgjobs.cancel(); with `blocked`, it also cancels a blocked job and its dependents."""
    m0009 = _load("0009_live_table_and_history.py")
    m0010 = _load("0010_job_control.py")
    m0012 = _load("0012_flow_control.py")
    text: str = m0012._cancel_sql(m0010, m0012._columns(m0009, m0010) + ", key")
    if not blocked:
        return text
    text = _replaced(
        text,
        "    IF current <> 'queued' THEN\n"
        "        RAISE EXCEPTION 'pgjobs: job % is % already, only queued or running jobs can be"
        " cancelled', job_id, current",
        "    IF current NOT IN ('queued', 'blocked') THEN\n"
        "        RAISE EXCEPTION 'pgjobs: job % is % already, only queued or running jobs can be"
        " cancelled', job_id, current",
    )
    return _replaced(
        text,
        "    PERFORM pgjobs.notify_done(ARRAY[job_id]);\n",
        "    PERFORM pgjobs.notify_done(ARRAY[job_id]);\n"
        "    -- Its dependents cannot run now: cancelled too, and theirs.\n"
        "    PERFORM pgjobs.resolve_dependents('{}', ARRAY[job_id]);\n",
    )


def upgrade() -> None:
    op.execute("ALTER TYPE pgjobs.job_status ADD VALUE IF NOT EXISTS 'blocked' AFTER 'queued'")
    op.execute(_TABLE)
    op.execute(_PENDING)
    op.execute(_RESOLVE)
    op.execute(_ADD)
    op.execute(_cancel_sql(blocked=True))


def downgrade() -> None:
    # Blocked jobs cannot be represented below this revision: they are cancelled.
    op.execute(
        """
DO $down$
DECLARE
    ids bigint[];
BEGIN
    SELECT coalesce(array_agg(id), '{}') INTO ids FROM pgjobs.jobs_live
     WHERE status::text = 'blocked';
    IF cardinality(ids) > 0 THEN
        RAISE EXCEPTION 'pgjobs: % blocked jobs (waiting on depends_on) exist; revision 0012 has '
                        'no blocked status', cardinality(ids)
            USING HINT = 'Let them run, or cancel them (SELECT pgjobs.cancel(id)), then downgrade.';
    END IF;
END
$down$
"""
    )
    op.execute(_cancel_sql(blocked=False))
    op.execute("DROP FUNCTION pgjobs.add_dependencies(bigint, bigint[])")
    op.execute("DROP FUNCTION pgjobs.resolve_dependents(bigint[], bigint[])")
    op.execute("DROP FUNCTION pgjobs.pending_parents(bigint[])")
    op.execute("DROP TABLE pgjobs.job_dependencies")
    # An enum value cannot be dropped: 'blocked' stays in pgjobs.job_status, unused.
