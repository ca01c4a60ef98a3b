"""Finished jobs move out of the hot table, into a history partitioned by status and time.

Until now a finished job stayed in pgjobs.jobs for its retention (a day for
a succeeded job), and the pruner deleted it row by row. The table that
claims and completions work on grew with throughput times retention, and
every pruned row was more vacuum debt.

From this revision:

- `pgjobs.jobs_live` is the old table, renamed: queued and running jobs.
  Claims, completions and enqueues touch only it, so its size follows the
  backlog.
- `pgjobs.job_history` holds finished jobs: LIST-partitioned by status
  (succeeded, failed, cancelled), each of those RANGE-partitioned by
  `finished_at` (a day per partition unless the leader is told otherwise).
  The completion statement moves a finished job there (DELETE ... RETURNING
  feeding an INSERT, one statement). Retention detaches and drops whole
  partitions: no row-by-row DELETE, no vacuum debt.
- `pgjobs.jobs` is a view, `jobs_live UNION ALL job_history`, with the same
  columns as before, so `SELECT ... FROM pgjobs.jobs`, the three views on
  it, `pgjobs.retry(id)` and `pgjobs.cancel(id)` see every job as one
  table. INSERT, UPDATE and DELETE through the view work too (INSTEAD OF
  triggers put each row where its status says); COPY, TRUNCATE and
  SELECT ... FOR UPDATE need the tables themselves.
- A job keeps its id for ever: ids come from one sequence, and a row moves
  between the two tables inside one statement.

The cutover below is catalog work under a short exclusive lock: the table
is renamed, nothing is copied. The finished jobs it already holds stay in
jobs_live, where they are still visible through the view, and are moved
into the history afterwards in batches of a few thousand, each its own
transaction: `python -m pgjobs migrate` does that once the schema is at
this revision, and the leader's maintenance finishes whatever is left.
Partitions for the finished jobs already there are created here: one per
status reaching back to the oldest of them, then one per day from today on.

Workers of earlier code claim from pgjobs.jobs with FOR NO KEY UPDATE,
which a view over a UNION cannot serve: stop them before this migration and
start the new ones after it (the pause is the migration's few seconds).

A view of your own over pgjobs.jobs would silently follow the rename and
see only live jobs; the migration stops instead, naming it. Drop it,
migrate, and create it again (it then reads the new view).

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-06
"""

import importlib.util
from pathlib import Path
from typing import Any

from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

_COLUMNS = (
    "id, queue, task, args, priority, status, run_at, attempts, max_attempts, fingerprint,"
    " worker_id, started_at, created_at, finished_at, errors, result, meta"
)
_OURS = ("job_states", "queue_stats", "failed_jobs")

_REFUSE_FOREIGN_VIEWS = """
DO $refuse$
DECLARE
    names text;
BEGIN
    SELECT string_agg(DISTINCT format('%I.%I', n.nspname, v.relname), ', ')
      INTO names
      FROM pg_depend AS d
      JOIN pg_rewrite AS r ON r.oid = d.objid
      JOIN pg_class AS v ON v.oid = r.ev_class
      JOIN pg_namespace AS n ON n.oid = v.relnamespace
     WHERE d.refobjid = 'pgjobs.jobs'::regclass
       AND d.classid = 'pg_rewrite'::regclass
       AND v.oid <> 'pgjobs.jobs'::regclass
       AND NOT (n.nspname = 'pgjobs' AND v.relname IN ('job_states', 'queue_stats', 'failed_jobs'));
    IF names IS NOT NULL THEN
        RAISE EXCEPTION 'pgjobs migration 0009: these views read pgjobs.jobs: %', names
            USING HINT = 'pgjobs.jobs becomes a view of live and finished jobs; a view over the old '
                         'table would see only live ones. Drop them, migrate, and create them again.';
    END IF;
END
$refuse$
"""

# The partitions. The step of a new partition divides a day, and partitions
# start on multiples of it (date_bin from midnight UTC), so that partitions
# made with different steps still line up. A new partition is clipped by its
# neighbours: it never overlaps one, even one made with another step.
_PARTITION_FUNCTIONS = """
CREATE VIEW pgjobs.history_partitions AS
SELECT s.status,
       c.oid::regclass AS partition,
       (regexp_match(pg_get_expr(c.relpartbound, c.oid), 'FROM \\(''([^'']*)''\\)'))[1]::timestamptz AS from_at,
       (regexp_match(pg_get_expr(c.relpartbound, c.oid), 'TO \\(''([^'']*)''\\)'))[1]::timestamptz AS to_at,
       i.inhdetachpending AS detaching
FROM (VALUES ('succeeded'::pgjobs.job_status), ('failed'), ('cancelled')) AS s (status)
JOIN pg_inherits AS i ON i.inhparent = format('pgjobs.job_history_%s', s.status)::regclass
JOIN pg_class AS c ON c.oid = i.inhrelid;

COMMENT ON VIEW pgjobs.history_partitions IS
    'The partitions of pgjobs.job_history: the finished status each holds and its finished_at range [from_at, to_at).';

CREATE FUNCTION pgjobs.history_step_valid(step interval) RETURNS interval
LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
    seconds numeric := extract(epoch FROM step);
BEGIN
    IF step IS NULL OR seconds < 900 OR seconds > 86400 OR mod(seconds, 60) <> 0 OR mod(86400, seconds) <> 0 THEN
        RAISE EXCEPTION 'pgjobs: a history partition interval must divide a day evenly, from 15 minutes to 1 day; got %', step
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Use one of 15m, 20m, 30m, 1h, 2h, 3h, 4h, 6h, 8h, 12h, 1d.';
    END IF;
    RETURN step;
END
$$;

CREATE FUNCTION pgjobs.history_partition_for(
    status pgjobs.job_status, at timestamptz, step interval DEFAULT '1 day'
) RETURNS regclass
LANGUAGE plpgsql AS $$
DECLARE
    found regclass;
    lo timestamptz;
    hi timestamptz;
    name text;
BEGIN
    IF status NOT IN ('succeeded', 'failed', 'cancelled') THEN
        RAISE EXCEPTION 'pgjobs: only finished jobs go to the history, not %', status
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF at IS NULL OR NOT isfinite(at) THEN
        RAISE EXCEPTION 'pgjobs: a finished job needs a finite finished_at, not %', at
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT p.partition INTO found FROM pgjobs.history_partitions AS p
     WHERE p.status = history_partition_for.status AND p.from_at <= at AND at < p.to_at
       AND NOT p.detaching;
    IF found IS NOT NULL THEN
        RETURN found;
    END IF;
    -- Two sessions making the same partition: the second waits here, then finds it.
    PERFORM pg_advisory_xact_lock(894977988, 3);
    SELECT p.partition INTO found FROM pgjobs.history_partitions AS p
     WHERE p.status = history_partition_for.status AND p.from_at <= at AND at < p.to_at
       AND NOT p.detaching;
    IF found IS NOT NULL THEN
        RETURN found;
    END IF;
    step := pgjobs.history_step_valid(step);
    lo := date_bin(step, at, timestamptz '2000-01-01 00:00:00+00');
    hi := lo + step;
    SELECT greatest(lo, max(p.to_at)) INTO lo FROM pgjobs.history_partitions AS p
     WHERE p.status = history_partition_for.status AND p.to_at > lo AND p.to_at <= at;
    SELECT least(hi, min(p.from_at)) INTO hi FROM pgjobs.history_partitions AS p
     WHERE p.status = history_partition_for.status AND p.from_at < hi AND p.from_at > at;
    lo := coalesce(lo, date_bin(step, at, timestamptz '2000-01-01 00:00:00+00'));
    hi := coalesce(hi, date_bin(step, at, timestamptz '2000-01-01 00:00:00+00') + step);
    name := format('job_history_%s_%s', status, to_char(lo AT TIME ZONE 'UTC', 'YYYYMMDD"_"HH24MI'));
    -- Made apart and then attached: ATTACH takes only a SHARE UPDATE EXCLUSIVE
    -- lock on the parent, so completions writing other partitions go on, and
    -- so do readers of pgjobs.jobs; CREATE TABLE ... PARTITION OF would take
    -- an exclusive lock and queue behind any long reader.
    EXECUTE format('CREATE TABLE pgjobs.%I (LIKE pgjobs.job_history INCLUDING DEFAULTS)', name);
    EXECUTE format('ALTER TABLE pgjobs.%I ATTACH PARTITION pgjobs.%I FOR VALUES FROM (%L) TO (%L)',
                   'job_history_' || status, name, lo, hi);
    RETURN format('pgjobs.%I', name)::regclass;
END
$$;

COMMENT ON FUNCTION pgjobs.history_partition_for(pgjobs.job_status, timestamptz, interval) IS
    'The history partition of a finished status that holds a finished_at, created (step long, aligned, clipped by its neighbours) if missing.';

CREATE FUNCTION pgjobs.create_history_partitions(step interval DEFAULT '1 day', ahead interval DEFAULT '2 days')
RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    s pgjobs.job_status;
    t timestamptz;
    made integer := 0;
    before integer;
    p regclass;
BEGIN
    step := pgjobs.history_step_valid(step);
    SELECT count(*) INTO before FROM pgjobs.history_partitions;
    FOREACH s IN ARRAY ARRAY['succeeded', 'failed', 'cancelled']::pgjobs.job_status[] LOOP
        t := now();
        WHILE t < now() + ahead LOOP
            p := pgjobs.history_partition_for(s, t, step);
            SELECT h.to_at INTO t FROM pgjobs.history_partitions AS h WHERE h.partition = p;
        END LOOP;
    END LOOP;
    SELECT count(*) - before INTO made FROM pgjobs.history_partitions;
    RETURN made;
END
$$;

COMMENT ON FUNCTION pgjobs.create_history_partitions(interval, interval) IS
    'Make sure every finished status has history partitions from now to now() + ahead; returns how many were made.';

CREATE FUNCTION pgjobs.move_finished_to_history(batch integer DEFAULT 5000) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    b record;
    moved integer;
BEGIN
    -- Partitions for what this batch holds, first.
    FOR b IN
        SELECT DISTINCT j.status, date_bin('1 day', j.finished_at, timestamptz '2000-01-01 00:00:00+00') AS day
        FROM (SELECT status, finished_at FROM pgjobs.jobs_live
              WHERE status IN ('succeeded', 'failed', 'cancelled') AND finished_at IS NOT NULL
              ORDER BY finished_at LIMIT batch) AS j
    LOOP
        PERFORM pgjobs.history_partition_for(b.status, b.day);
        PERFORM pgjobs.history_partition_for(b.status, b.day + interval '1 day' - interval '1 microsecond');
    END LOOP;
    WITH chosen AS MATERIALIZED (
        SELECT id FROM pgjobs.jobs_live
        WHERE status IN ('succeeded', 'failed', 'cancelled') AND finished_at IS NOT NULL
        ORDER BY finished_at
        LIMIT batch
        FOR UPDATE SKIP LOCKED
    ), gone AS (
        DELETE FROM pgjobs.jobs_live AS j USING chosen WHERE j.id = chosen.id
        RETURNING j.*
    ), kept AS (
        INSERT INTO pgjobs.job_history SELECT * FROM gone RETURNING 1
    )
    SELECT count(*) INTO moved FROM kept;
    RETURN moved;
END
$$;

COMMENT ON FUNCTION pgjobs.move_finished_to_history(integer) IS
    'Move up to batch finished jobs (with a finished_at) from pgjobs.jobs_live into pgjobs.job_history; returns how many.';
"""

_VIEW_WRITES = f"""
CREATE FUNCTION pgjobs.jobs_write() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    finished boolean;
    was_live boolean;
BEGIN
    IF TG_OP = 'DELETE' THEN
        DELETE FROM pgjobs.jobs_live WHERE id = OLD.id;
        IF NOT FOUND THEN
            DELETE FROM pgjobs.job_history WHERE id = OLD.id AND status = OLD.status AND finished_at = OLD.finished_at;
        END IF;
        RETURN OLD;
    END IF;
    NEW.id := coalesce(NEW.id, nextval('pgjobs.jobs_id_seq'));
    -- A job written as finished is finished now unless it says when, as a
    -- worker's completion would record it; it goes to the history.
    finished := NEW.status IN ('succeeded', 'failed', 'cancelled');
    IF finished THEN
        NEW.finished_at := coalesce(NEW.finished_at, now());
    END IF;
    IF TG_OP = 'UPDATE' THEN
        was_live := EXISTS (SELECT 1 FROM pgjobs.jobs_live WHERE id = OLD.id);
        IF was_live AND NOT finished THEN
            UPDATE pgjobs.jobs_live SET ({_COLUMNS}) = (SELECT NEW.*) WHERE id = OLD.id;
            RETURN NEW;
        END IF;
        IF was_live THEN
            DELETE FROM pgjobs.jobs_live WHERE id = OLD.id;
        ELSE
            DELETE FROM pgjobs.job_history
             WHERE id = OLD.id AND status = OLD.status AND finished_at = OLD.finished_at;
        END IF;
    ELSIF EXISTS (SELECT 1 FROM pgjobs.jobs_live WHERE id = NEW.id)
          OR EXISTS (SELECT 1 FROM pgjobs.job_history WHERE id = NEW.id) THEN
        RAISE EXCEPTION 'pgjobs: a job with id % exists already', NEW.id
            USING ERRCODE = 'unique_violation', HINT = 'Leave id out: the sequence gives a new one.';
    END IF;
    IF finished THEN
        PERFORM pgjobs.history_partition_for(NEW.status, NEW.finished_at);
        INSERT INTO pgjobs.job_history ({_COLUMNS}) SELECT NEW.*;
    ELSE
        INSERT INTO pgjobs.jobs_live ({_COLUMNS}) SELECT NEW.*;
    END IF;
    RETURN NEW;
END
$$;

CREATE TRIGGER jobs_write INSTEAD OF INSERT OR UPDATE OR DELETE ON pgjobs.jobs
    FOR EACH ROW EXECUTE FUNCTION pgjobs.jobs_write();
"""

# The SQL functions, on the two tables: enqueue writes jobs_live.
_ENQUEUE_FUNCTIONS = """
CREATE OR REPLACE FUNCTION pgjobs.enqueue(task text, args jsonb DEFAULT '{}'::jsonb, queue text DEFAULT 'default'::text, priority integer DEFAULT 2, run_at timestamp with time zone DEFAULT NULL::timestamp with time zone, fingerprint text DEFAULT NULL::text, max_attempts integer DEFAULT 3, meta jsonb DEFAULT '{}'::jsonb) RETURNS bigint
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    new_id bigint;
BEGIN
    INSERT INTO pgjobs.jobs_live (task, args, queue, priority, run_at, fingerprint, max_attempts, meta)
    VALUES (
        enqueue.task,
        coalesce(enqueue.args, '{}'::jsonb),
        coalesce(enqueue.queue, 'default'),
        coalesce(enqueue.priority, 2),
        coalesce(enqueue.run_at, now()),
        enqueue.fingerprint,
        coalesce(enqueue.max_attempts, 3),
        coalesce(enqueue.meta, '{}'::jsonb)
    )
    ON CONFLICT (fingerprint) WHERE status IN ('queued', 'running') AND fingerprint IS NOT NULL DO NOTHING
    RETURNING id INTO new_id;
    IF new_id IS NOT NULL AND (enqueue.run_at IS NULL OR enqueue.run_at <= now()) THEN
        PERFORM pgjobs.wake(coalesce(enqueue.queue, 'default'));
    END IF;
    RETURN new_id;
END
$$;

CREATE OR REPLACE FUNCTION pgjobs.enqueue_many(tasks text[], args jsonb[], queues text[], priorities integer[], run_ats timestamp with time zone[], fingerprints text[], max_attempts integer[], metas jsonb[]) RETURNS SETOF bigint
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    due_queue text;
BEGIN
    RETURN QUERY
    INSERT INTO pgjobs.jobs_live (task, args, queue, priority, run_at, fingerprint, max_attempts, meta)
    SELECT t, a, q, p, coalesce(r, now()), f, m, coalesce(x, '{}'::jsonb)
    FROM unnest(tasks, args, queues, priorities, run_ats, fingerprints, max_attempts, metas)
        AS u(t, a, q, p, r, f, m, x)
    ON CONFLICT (fingerprint) WHERE status IN ('queued', 'running') AND fingerprint IS NOT NULL DO NOTHING
    RETURNING id;
    FOR due_queue IN
        SELECT DISTINCT q FROM unnest(queues, run_ats) AS u(q, r) WHERE r IS NULL OR r <= now()
    LOOP
        PERFORM pgjobs.wake(due_queue);
    END LOOP;
END
$$;
"""

# retry() moves a finished job back to live; cancel() moves a queued one out.
_MOVE_FUNCTIONS = """
CREATE OR REPLACE FUNCTION pgjobs.retry(job_id bigint) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    current pgjobs.job_status;
    done timestamptz;
    job_queue text;
    job_fingerprint text;
    holder bigint;
    live boolean;
    hit boolean := false;
BEGIN
    -- Live first, then the history, then live again: a concurrent retry of
    -- the same finished job moves it while this one waits for its row lock,
    -- and the second look finds it queued.
    FOR pass IN 1..3 LOOP
        live := pass <> 2;
        IF live THEN
            SELECT status, finished_at, queue, fingerprint INTO current, done, job_queue, job_fingerprint
            FROM pgjobs.jobs_live WHERE id = job_id FOR UPDATE;
        ELSE
            SELECT status, finished_at, queue, fingerprint INTO current, done, job_queue, job_fingerprint
            FROM pgjobs.job_history WHERE id = job_id FOR UPDATE;
        END IF;
        hit := FOUND;
        EXIT WHEN hit;
    END LOOP;
    -- (FOUND itself is true after any FOR loop that ran.)
    IF NOT hit THEN
        RAISE EXCEPTION 'pgjobs: no job with id %', job_id
            USING ERRCODE = 'no_data_found', HINT = 'List jobs with: SELECT id, status FROM pgjobs.jobs';
    END IF;
    IF current NOT IN ('failed', 'cancelled', 'queued') THEN
        RAISE EXCEPTION 'pgjobs: job % is %, only failed, cancelled or queued jobs can be retried', job_id, current
            USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;
    IF current <> 'queued' AND job_fingerprint IS NOT NULL THEN
        SELECT id INTO holder FROM pgjobs.jobs_live
        WHERE fingerprint = job_fingerprint AND status IN ('queued', 'running') AND id <> job_id;
        IF FOUND THEN
            RAISE EXCEPTION 'pgjobs: job % cannot be retried: active job % holds its fingerprint %',
                job_id, holder, job_fingerprint
                USING ERRCODE = 'object_not_in_prerequisite_state';
        END IF;
    END IF;
    IF live THEN
        UPDATE pgjobs.jobs_live
           SET status = 'queued', run_at = now(), attempts = 0, finished_at = NULL, worker_id = NULL
         WHERE id = job_id;
    ELSE
        -- Back to live, with the same id.
        WITH moved AS (
            DELETE FROM pgjobs.job_history
             WHERE id = job_id AND status = current AND finished_at = done
            RETURNING *
        )
        INSERT INTO pgjobs.jobs_live (id, queue, task, args, priority, status, run_at, attempts,
                                      max_attempts, fingerprint, worker_id, started_at, created_at,
                                      finished_at, errors, result, meta)
        SELECT id, queue, task, args, priority, 'queued', now(), 0, max_attempts, fingerprint,
               NULL, started_at, created_at, NULL, errors, result, meta
        FROM moved;
    END IF;
    PERFORM pgjobs.wake(job_queue);
END
$$;

CREATE OR REPLACE FUNCTION pgjobs.cancel(job_id bigint) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    current pgjobs.job_status;
BEGIN
    SELECT status INTO current FROM pgjobs.jobs_live WHERE id = job_id FOR UPDATE;
    IF NOT FOUND THEN
        SELECT status INTO current FROM pgjobs.job_history WHERE id = job_id;
    END IF;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'pgjobs: no job with id %', job_id
            USING ERRCODE = 'no_data_found', HINT = 'List jobs with: SELECT id, status FROM pgjobs.jobs';
    END IF;
    IF current <> 'queued' THEN
        RAISE EXCEPTION 'pgjobs: job % is %, only queued jobs can be cancelled', job_id, current
            USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;
    PERFORM pgjobs.history_partition_for('cancelled', now());
    WITH moved AS (DELETE FROM pgjobs.jobs_live WHERE id = job_id RETURNING *)
    INSERT INTO pgjobs.job_history (id, queue, task, args, priority, status, run_at, attempts,
                                    max_attempts, fingerprint, worker_id, started_at, created_at,
                                    finished_at, errors, result, meta)
    SELECT id, queue, task, args, priority, 'cancelled', run_at, attempts, max_attempts, fingerprint,
           worker_id, started_at, created_at, now(), errors, result, meta
    FROM moved;
END
$$;
"""


def _migration_0007() -> Any:
    # Its save-and-restore of the three views, loaded by path: Alembic loads
    # revision files by path too, so they are not importable as a package.
    path = Path(__file__).with_name("0007_column_checks_as_domains.py")
    spec = importlib.util.spec_from_file_location("pgjobs_migration_0007", path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _views_sql() -> str:
    return f"""
CREATE VIEW pgjobs.jobs AS
    SELECT {_COLUMNS} FROM pgjobs.jobs_live
    UNION ALL
    SELECT {_COLUMNS} FROM pgjobs.job_history;

COMMENT ON VIEW pgjobs.jobs IS
    'Every job, live (pgjobs.jobs_live: queued, running) and finished (pgjobs.job_history, partitioned by status and finished_at).';

-- What an INSERT through the view leaves out, as the table did.
ALTER VIEW pgjobs.jobs ALTER COLUMN id SET DEFAULT nextval('pgjobs.jobs_id_seq');
ALTER VIEW pgjobs.jobs ALTER COLUMN queue SET DEFAULT 'default';
ALTER VIEW pgjobs.jobs ALTER COLUMN args SET DEFAULT '{{}}'::jsonb;
ALTER VIEW pgjobs.jobs ALTER COLUMN priority SET DEFAULT 2;
ALTER VIEW pgjobs.jobs ALTER COLUMN status SET DEFAULT 'queued';
ALTER VIEW pgjobs.jobs ALTER COLUMN run_at SET DEFAULT now();
ALTER VIEW pgjobs.jobs ALTER COLUMN attempts SET DEFAULT 0;
ALTER VIEW pgjobs.jobs ALTER COLUMN max_attempts SET DEFAULT 3;
ALTER VIEW pgjobs.jobs ALTER COLUMN created_at SET DEFAULT now();
ALTER VIEW pgjobs.jobs ALTER COLUMN errors SET DEFAULT '[]'::jsonb;
ALTER VIEW pgjobs.jobs ALTER COLUMN meta SET DEFAULT '{{}}'::jsonb;
"""


def upgrade() -> None:
    op.execute("SET LOCAL lock_timeout = '10s'")
    op.execute("LOCK TABLE pgjobs.jobs IN ACCESS EXCLUSIVE MODE")
    op.execute(_REFUSE_FOREIGN_VIEWS)
    # Our three views are saved, dropped and made again over the new view,
    # with their owner, grants and comments (the same steps as 0007).
    m0007 = _migration_0007()
    m0007._save_and_drop_views()
    op.execute("ALTER TABLE pgjobs.jobs RENAME TO jobs_live")
    for old, new in (
        ("jobs_pkey", "jobs_live_pkey"),
        ("jobs_fetch_idx", "jobs_live_fetch_idx"),
        ("jobs_fingerprint_active_idx", "jobs_live_fingerprint_active_idx"),
        ("jobs_fingerprint_idx", "jobs_live_fingerprint_idx"),
        ("jobs_finished_idx", "jobs_live_finished_idx"),
        ("jobs_running_worker_idx", "jobs_live_running_worker_idx"),
    ):
        op.execute(f"ALTER INDEX pgjobs.{old} RENAME TO {new}")
    op.execute(
        "CREATE TABLE pgjobs.job_history (LIKE pgjobs.jobs_live INCLUDING DEFAULTS)"
        " PARTITION BY LIST (status)"
    )
    op.execute("ALTER TABLE pgjobs.job_history ALTER COLUMN finished_at SET NOT NULL")
    # Ids come from the live table's sequence, here too (a row written straight
    # into the history, by a benchmark or an operator, gets a fresh one).
    op.execute(
        "ALTER TABLE pgjobs.job_history ALTER COLUMN id SET DEFAULT nextval('pgjobs.jobs_id_seq')"
    )
    for status in ("succeeded", "failed", "cancelled"):
        op.execute(
            f"CREATE TABLE pgjobs.job_history_{status} PARTITION OF pgjobs.job_history"
            f" FOR VALUES IN ('{status}') PARTITION BY RANGE (finished_at)"
        )
    op.execute("CREATE INDEX job_history_id_idx ON pgjobs.job_history (id)")
    op.execute("CREATE INDEX job_history_finished_idx ON pgjobs.job_history (finished_at)")
    op.execute(
        "CREATE INDEX job_history_fingerprint_idx ON pgjobs.job_history (fingerprint)"
        " WHERE fingerprint IS NOT NULL"
    )
    op.execute(
        "COMMENT ON TABLE pgjobs.jobs_live IS"
        " 'Queued and running jobs: the table claims and completions work on.'"
    )
    op.execute(
        "COMMENT ON TABLE pgjobs.job_history IS"
        " 'Finished jobs, partitioned by status, then by finished_at; retention drops whole partitions.'"
    )
    op.execute(_views_sql())
    m0007._restore_views()
    op.execute(_PARTITION_FUNCTIONS)
    op.execute(_VIEW_WRITES)
    op.execute(_ENQUEUE_FUNCTIONS)
    op.execute(_MOVE_FUNCTIONS)
    # Partitions for the finished jobs already here: per status, one from the
    # day of the oldest up to today, then the usual ones from today on.
    op.execute(
        """
DO $parts$
DECLARE
    s pgjobs.job_status;
    oldest timestamptz;
    today timestamptz := date_bin('1 day', now(), timestamptz '2000-01-01 00:00:00+00');
    name text;
BEGIN
    FOREACH s IN ARRAY ARRAY['succeeded', 'failed', 'cancelled']::pgjobs.job_status[] LOOP
        SELECT min(finished_at) INTO oldest FROM pgjobs.jobs_live
         WHERE status = s AND finished_at IS NOT NULL AND finished_at < today;
        IF oldest IS NOT NULL AND isfinite(oldest) THEN
            name := format('job_history_%s_%s', s,
                           to_char(date_bin('1 day', oldest, timestamptz '2000-01-01 00:00:00+00')
                                   AT TIME ZONE 'UTC', 'YYYYMMDD"_"HH24MI'));
            EXECUTE format('CREATE TABLE pgjobs.%I PARTITION OF pgjobs.%I FOR VALUES FROM (%L) TO (%L)',
                           name, 'job_history_' || s,
                           date_bin('1 day', oldest, timestamptz '2000-01-01 00:00:00+00'), today);
        END IF;
    END LOOP;
END
$parts$
"""
    )
    op.execute("SELECT pgjobs.create_history_partitions('1 day', '2 days')")
    op.execute("ANALYZE pgjobs.jobs_live")


def downgrade() -> None:
    op.execute("SET LOCAL lock_timeout = '10s'")
    op.execute("LOCK TABLE pgjobs.jobs_live IN ACCESS EXCLUSIVE MODE")
    m0007 = _migration_0007()
    m0007._save_and_drop_views()
    op.execute("DROP VIEW pgjobs.jobs")
    op.execute("DROP FUNCTION pgjobs.jobs_write()")
    op.execute(f"INSERT INTO pgjobs.jobs_live ({_COLUMNS}) SELECT {_COLUMNS} FROM pgjobs.job_history")
    op.execute("DROP TABLE pgjobs.job_history")
    op.execute("DROP FUNCTION pgjobs.move_finished_to_history(integer)")
    op.execute("DROP FUNCTION pgjobs.create_history_partitions(interval, interval)")
    op.execute("DROP FUNCTION pgjobs.history_partition_for(pgjobs.job_status, timestamptz, interval)")
    op.execute("DROP FUNCTION pgjobs.history_step_valid(interval)")
    op.execute("DROP VIEW pgjobs.history_partitions")
    op.execute("ALTER TABLE pgjobs.jobs_live RENAME TO jobs")
    for old, new in (
        ("jobs_pkey", "jobs_live_pkey"),
        ("jobs_fetch_idx", "jobs_live_fetch_idx"),
        ("jobs_fingerprint_active_idx", "jobs_live_fingerprint_active_idx"),
        ("jobs_fingerprint_idx", "jobs_live_fingerprint_idx"),
        ("jobs_finished_idx", "jobs_live_finished_idx"),
        ("jobs_running_worker_idx", "jobs_live_running_worker_idx"),
    ):
        op.execute(f"ALTER INDEX pgjobs.{new} RENAME TO {old}")
    op.execute("COMMENT ON TABLE pgjobs.jobs IS NULL")
    m0007._restore_views()
    # The functions as 0008 left them, on the single table again.
    op.execute(_ENQUEUE_FUNCTIONS.replace("pgjobs.jobs_live", "pgjobs.jobs"))
    op.execute(_OLD_MOVE_FUNCTIONS)


_OLD_MOVE_FUNCTIONS = """
CREATE OR REPLACE FUNCTION pgjobs.retry(job_id bigint) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    current pgjobs.job_status;
    job_queue text;
    job_fingerprint text;
    holder bigint;
BEGIN
    SELECT status, queue, fingerprint INTO current, job_queue, job_fingerprint
    FROM pgjobs.jobs WHERE id = job_id FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'pgjobs: no job with id %', job_id
            USING ERRCODE = 'no_data_found', HINT = 'List jobs with: SELECT id, status FROM pgjobs.jobs';
    END IF;
    IF current NOT IN ('failed', 'cancelled', 'queued') THEN
        RAISE EXCEPTION 'pgjobs: job % is %, only failed, cancelled or queued jobs can be retried', job_id, current
            USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;
    IF current <> 'queued' AND job_fingerprint IS NOT NULL THEN
        SELECT id INTO holder FROM pgjobs.jobs
        WHERE fingerprint = job_fingerprint AND status IN ('queued', 'running') AND id <> job_id;
        IF FOUND THEN
            RAISE EXCEPTION 'pgjobs: job % cannot be retried: active job % holds its fingerprint %',
                job_id, holder, job_fingerprint
                USING ERRCODE = 'object_not_in_prerequisite_state';
        END IF;
    END IF;
    UPDATE pgjobs.jobs
       SET status = 'queued', run_at = now(), attempts = 0, finished_at = NULL, worker_id = NULL
     WHERE id = job_id;
    PERFORM pgjobs.wake(job_queue);
END
$$;

CREATE OR REPLACE FUNCTION pgjobs.cancel(job_id bigint) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    current pgjobs.job_status;
BEGIN
    SELECT status INTO current FROM pgjobs.jobs WHERE id = job_id FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'pgjobs: no job with id %', job_id
            USING ERRCODE = 'no_data_found', HINT = 'List jobs with: SELECT id, status FROM pgjobs.jobs';
    END IF;
    IF current <> 'queued' THEN
        RAISE EXCEPTION 'pgjobs: job % is %, only queued jobs can be cancelled', job_id, current
            USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;
    UPDATE pgjobs.jobs SET status = 'cancelled', finished_at = now() WHERE id = job_id;
END
$$;
"""
