"""Workflows: a dependency may let its job run whatever its parent's outcome (`always`).

- `pgjobs.job_dependencies.always` (boolean, default false): the edge of
  `depends_on=[pgjobs.after(parent, always=True)]`. When such a parent
  fails or is cancelled, its edge goes as a success's does, and the job is
  queued once it has no other parent left to wait for; only the edges
  without `always` cancel their job (and its dependents) when their parent
  does not succeed.
- `pgjobs.pending_parents(parents, always)`: what an enqueue with such
  dependencies calls (pgjobs/sql/enqueue_blocked.sql). As 0014's
  one-argument function, which stays for code of 0014, but a parent named
  in `always` may have failed or been cancelled already: it counts as ended.
- `pgjobs.add_dependencies(job_id, parents, always)`: 0014's two-argument
  function (which stays), with the parents in `always` marked so, as
  `depends_on` with `pgjobs.after(id, always=True)` does from Python.
- `pgjobs.resolve_dependents(succeeded, ended)`, made again: level by level,
  the edges of succeeded parents and the `always` edges of the others are
  deleted first (queuing the jobs left with no parent), then the jobs that
  still wait for a parent that did not succeed are cancelled, and their own
  dependents are seen to at the next level.

A column with a constant default is added without rewriting the table
(PostgreSQL 11 and later); the table is empty with no workflow in flight.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-06
"""

import importlib.util
from pathlib import Path
from typing import Any

from alembic import op

# The revision, in one place (renumbering this migration changes these two).
revision = "0016"
down_revision = "0015"
# An expand: code of 0015 still runs against it (its statements call the
# functions of 0014, which stay, and never read the new column).
oldest_code = down_revision
branch_labels = None
depends_on = None

_COLUMN = """
ALTER TABLE pgjobs.job_dependencies ADD COLUMN always boolean NOT NULL DEFAULT false;

COMMENT ON COLUMN pgjobs.job_dependencies.always IS
    'The job runs once this parent has ended, whatever its outcome (pgjobs.after(id, always=True)); '
    'false: only if it succeeded, and a failed or cancelled parent cancels the job.';
"""

_PENDING = """
CREATE FUNCTION pgjobs.pending_parents(parents bigint[], always bigint[]) RETURNS bigint[]
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    wanted bigint[];
    anyway bigint[];
    live bigint[];
    bad record;
    missing bigint;
BEGIN
    SELECT coalesce(array_agg(DISTINCT p), '{}') INTO wanted
      FROM unnest(parents || coalesce(always, '{}')) AS p;
    anyway := coalesce(always, '{}');
    -- The live parents, held until this transaction ends (see 0014).
    SELECT coalesce(array_agg(l.id ORDER BY l.id), '{}') INTO live
      FROM (SELECT j.id FROM pgjobs.jobs_live AS j
             WHERE j.id = ANY (wanted) AND j.status IN ('queued', 'running', 'blocked')
             ORDER BY j.id
               FOR KEY SHARE) AS l;
    SELECT h.id, h.status INTO bad
      FROM pgjobs.jobs AS h
     WHERE h.id = ANY (wanted) AND h.id <> ALL (live) AND h.id <> ALL (anyway)
       AND h.status IN ('failed', 'cancelled')
     ORDER BY h.id LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'pgjobs: depends_on names job %, which is % already, so this job could never run',
            bad.id, bad.status
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = 'Retry that job first (pgjobs.retry), leave it out of depends_on, or '
                         'name it with pgjobs.after(id, always=True) to run whatever its outcome.';
    END IF;
    SELECT p INTO missing
      FROM unnest(wanted) AS p
     WHERE p <> ALL (live)
       AND NOT EXISTS (SELECT 1 FROM pgjobs.jobs AS h
                        WHERE h.id = p AND (h.status = 'succeeded' OR h.id = ANY (anyway)))
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

COMMENT ON FUNCTION pgjobs.pending_parents(bigint[], bigint[]) IS
    'For an enqueue with depends_on: the parents (of both arrays) that have not ended yet, locked '
    'until commit; raises for an id that is no job, or one of `parents` that failed or was cancelled.';
"""

# The columns of 0012, which the cancelled dependents are written with (a
# column a later migration adds takes its default).
_COLUMNS = (
    "id, queue, task, args, priority, status, run_at, attempts, max_attempts, fingerprint,"
    " worker_id, started_at, created_at, finished_at, errors, result, meta, cancel_requested_at,"
    " cancelled_by, snoozes, progress, checkpoint, timeout, key"
)

# Level by level: `released` are the parents whose edges let their jobs go
# on (the succeeded ones, and, for `always` edges, those that did not
# succeed), `doomed` those that did not succeed. The release comes first, so
# that a job waiting for a doomed parent through an edge without `always`
# is not queued: it keeps that edge, and the cancel below takes it. As in
# 0014, each step is its own statement, reading a snapshot taken after the
# row locks before it were granted.
_RESOLVE = f"""
CREATE OR REPLACE FUNCTION pgjobs.resolve_dependents(succeeded bigint[], ended bigint[])
RETURNS integer
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
    LOOP
        -- The edges that let their jobs go on: a job left with none is queued.
        WITH gone AS (
            DELETE FROM pgjobs.job_dependencies AS d
             WHERE d.parent_id = ANY (succeeded) OR (d.always AND d.parent_id = ANY (doomed))
            RETURNING d.job_id
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
        EXIT WHEN cardinality(doomed) = 0;
        -- A doomed job's own edges (a blocked job cancelled itself) go; the
        -- jobs that still wait for it (edges without `always`) are cancelled.
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
        -- The next level: only the cancelled jobs' dependents are left to see to.
        succeeded := '{{}}';
    END LOOP;
    RETURN changed;
END
$$;

COMMENT ON FUNCTION pgjobs.resolve_dependents(bigint[], bigint[]) IS
    'Called with the outcome of jobs: queues the blocked jobs whose last parent succeeded (or ended, '
    'for an edge marked always), and cancels (recursively) those that wait for a job that failed '
    'or was cancelled; returns how many changed.';
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
        raise RuntimeError(f"migration {revision}: {old!r} not found in 0014's SQL")
    return text.replace(old, new)


def _add_sql() -> str:
    """0014's pgjobs.add_dependencies(), taking a third array: the parents named `always`."""
    text: str = _load("0014_workflows.py")._ADD
    for old, new in (
        (
            "pgjobs.add_dependencies(target bigint, parents bigint[]) RETURNS bigint",
            "pgjobs.add_dependencies(target bigint, parents bigint[], always bigint[])\n"
            "RETURNS bigint",
        ),
        (
            "    wanted bigint[];\n",
            "    wanted bigint[];\n    anyway bigint[];\n",
        ),
        (
            "FROM unnest(parents) WITH ORDINALITY AS u (p, n)",
            "FROM unnest(parents || coalesce(always, '{}')) WITH ORDINALITY AS u (p, n)",
        ),
        (
            "    pending := pgjobs.pending_parents(wanted);\n",
            "    SELECT coalesce(array_agg(DISTINCT p), '{}') INTO anyway\n"
            "      FROM unnest(always) AS p WHERE p IS NOT NULL;\n"
            "    pending := pgjobs.pending_parents(wanted, anyway);\n",
        ),
        (
            "jsonb_build_object('depends_on', to_jsonb(wanted))",
            "jsonb_build_object('depends_on', to_jsonb(wanted))\n"
            "                        || CASE WHEN cardinality(anyway) > 0\n"
            "                                THEN jsonb_build_object('depends_on_always',"
            " to_jsonb(anyway))\n"
            "                                ELSE '{}' END",
        ),
        (
            "    INSERT INTO pgjobs.job_dependencies (parent_id, job_id)\n"
            "    SELECT p, target FROM unnest(pending) AS p;",
            "    INSERT INTO pgjobs.job_dependencies (parent_id, job_id, always)\n"
            "    SELECT p, target, p = ANY (anyway) FROM unnest(pending) AS p;",
        ),
        (
            "pgjobs.add_dependencies(bigint, bigint[]) IS",
            "pgjobs.add_dependencies(bigint, bigint[], bigint[]) IS",
        ),
        (
            "'Make a queued job (enqueued in this transaction) wait for parents, as depends_on does;"
            " returns its id.'",
            "'As add_dependencies(job_id, parents), and also for the parents of `always`, whose "
            "outcome, whatever it is, lets the job run (pgjobs.after(id, always=True)).'",
        ),
    ):
        text = _replaced(text, old, new)
    return text


def upgrade() -> None:
    op.execute(_COLUMN)
    op.execute(_PENDING)
    op.execute(_RESOLVE)
    op.execute(_add_sql())


def downgrade() -> None:
    # An `always` edge cannot be represented below this revision: refused while one waits.
    op.execute(
        """
DO $down$
DECLARE
    n bigint;
BEGIN
    SELECT count(*) INTO n FROM pgjobs.job_dependencies WHERE always;
    IF n > 0 THEN
        RAISE EXCEPTION 'pgjobs: % dependencies wait with always (pgjobs.after(id, always=True)); '
                        'revision 0014 cannot keep them', n
            USING HINT = 'Let those jobs run, or cancel them (SELECT pgjobs.cancel(id)), then '
                         'downgrade.';
    END IF;
END
$down$
"""
    )
    m0014 = _load("0014_workflows.py")
    op.execute(
        m0014._RESOLVE.replace(
            "CREATE FUNCTION pgjobs.resolve_dependents",
            "CREATE OR REPLACE FUNCTION pgjobs.resolve_dependents",
        )
    )
    op.execute("DROP FUNCTION pgjobs.add_dependencies(bigint, bigint[], bigint[])")
    op.execute("DROP FUNCTION pgjobs.pending_parents(bigint[], bigint[])")
    op.execute("ALTER TABLE pgjobs.job_dependencies DROP COLUMN always")
