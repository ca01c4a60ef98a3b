"""Webhooks: HTTP notifications of job events, each delivery a job of its own.

- `pgjobs.webhooks`: one row per webhook, declared in code (`app.webhook`,
  written by workers when they start, `origin = 'code'`) or inserted by SQL
  (`origin = 'sql'`, the default). Its CHECK constraints refuse what
  `app.webhook` refuses: a URL that is not http(s), a secret shorter than
  16 bytes, an unknown event.
- `pgjobs.webhooks_fire(jobs jsonb)`: given job events (a JSON array of job
  objects), inserts one delivery job (task `pgjobs.webhook`) per matching
  active webhook into `pgjobs.jobs_live`, in the caller's transaction, and
  wakes the workers of the deliveries' queues.
- A statement-level AFTER INSERT trigger on `pgjobs.job_history` with a
  transition table: every statement that finishes jobs (complete.sql,
  complete_one.sql, rescue.sql, pgjobs.cancel(), the bulk cancel, writes
  through the pgjobs.jobs view) fires `succeeded`, `cancelled` and
  `dead-lettered` (or `failed`) webhooks in the transaction that records the
  outcome. Without an active webhook it costs one probe of an empty table
  per statement, not per job.
- Failed attempts that go back to the queue (the `failed` event) never reach
  the history: complete.sql and rescue.sql call `pgjobs.webhooks_fire`
  themselves, only when an active webhook exists.
- `pgjobs.move_finished_to_history()` (the 0009 backlog of old finished
  rows) runs with `pgjobs.webhooks = 'off'`: moving old rows is not news.
  The same setting (`SET LOCAL pgjobs.webhooks = 'off'`) silences webhooks
  for any transaction.

No column is added to the jobs tables.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-06
"""

from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

UPGRADE = r"""
CREATE TABLE pgjobs.webhooks (
    name         text        PRIMARY KEY,
    url          text        NOT NULL,
    -- The HMAC-SHA256 key the deliveries are signed with; never copied into a job.
    secret       text        NOT NULL,
    events       text[]      NOT NULL,
    -- NULL: every task (every queue). Otherwise the exact names.
    tasks        text[],
    queues       text[],
    -- The queue of the delivery jobs; NULL: the queue of the job that fired.
    queue        text,
    -- Seconds one delivery attempt may take, connecting included.
    timeout      double precision NOT NULL DEFAULT 10,
    -- Attempts of each delivery before it is dead-lettered.
    max_attempts integer     NOT NULL DEFAULT 8,
    -- 'code': written by workers from app.webhook(); 'sql': added by hand.
    origin       text        NOT NULL DEFAULT 'sql',
    active       boolean     NOT NULL DEFAULT true,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT webhooks_name_valid CHECK (name <> '' AND length(name) <= 200),
    CONSTRAINT webhooks_url_http CHECK (url ~* '^https?://[^/?#\s]+' AND length(url) <= 2000),
    CONSTRAINT webhooks_secret_long CHECK (octet_length(secret) >= 16),
    CONSTRAINT webhooks_events_known CHECK (
        cardinality(events) > 0
        AND events <@ ARRAY['failed', 'dead-lettered', 'succeeded', 'cancelled']),
    CONSTRAINT webhooks_queue_valid CHECK (queue <> '' AND length(queue) <= 128),
    CONSTRAINT webhooks_timeout_valid CHECK (timeout > 0 AND timeout <= 300),
    CONSTRAINT webhooks_attempts_valid CHECK (max_attempts BETWEEN 1 AND 100),
    CONSTRAINT webhooks_origin_valid CHECK (origin IN ('code', 'sql'))
);

COMMENT ON TABLE pgjobs.webhooks IS
    'HTTP notifications of job events (failed, dead-lettered, succeeded, cancelled); each delivery is a job of task pgjobs.webhook.';

-- One delivery job per (job event, matching active webhook). `jobs` is a JSON
-- array of objects with the job's id, task, queue, status (queued for a
-- failed attempt that will be retried), attempts, max_attempts, created_at,
-- finished_at, error (its last error entry) and cancelled_by.
--
-- A job that ends `failed` is `dead-lettered` for a webhook that listens to
-- that event, else `failed` for one that listens only to failed attempts:
-- one delivery per webhook and outcome. Deliveries' own outcomes fire
-- nothing (a webhook on failures would otherwise feed itself).
CREATE FUNCTION pgjobs.webhooks_fire(jobs jsonb) RETURNS integer
LANGUAGE plpgsql STRICT AS $$
DECLARE
    n integer;
    woken text[];
BEGIN
    IF coalesce(current_setting('pgjobs.webhooks', true), '') = 'off' THEN
        RETURN 0;
    END IF;
    WITH j AS (
        SELECT *
        FROM jsonb_to_recordset(jobs) AS x(id bigint, task text, queue text, status text,
                                           attempts integer, max_attempts integer,
                                           created_at timestamptz, finished_at timestamptz,
                                           error jsonb, cancelled_by text)
        WHERE x.task <> 'pgjobs.webhook'
    ), due AS (
        SELECT w.name, w.max_attempts AS tries, coalesce(w.queue, j.queue) AS delivery_queue,
               w.events,
               CASE WHEN j.status = 'queued' THEN 'failed'
                    WHEN j.status = 'failed' AND 'dead-lettered' = ANY (w.events)
                        THEN 'dead-lettered'
                    ELSE j.status END AS event,
               j.*
        FROM j
        JOIN pgjobs.webhooks AS w
          ON w.active
         AND (w.tasks IS NULL OR j.task = ANY (w.tasks))
         AND (w.queues IS NULL OR j.queue = ANY (w.queues))
    ), made AS (
        INSERT INTO pgjobs.jobs_live (task, args, queue, max_attempts)
        SELECT 'pgjobs.webhook',
               jsonb_build_object(
                   'webhook', d.name,
                   'payload', jsonb_build_object(
                       'event', d.event,
                       'webhook', d.name,
                       'job', jsonb_strip_nulls(jsonb_build_object(
                           'id', d.id, 'task', d.task, 'queue', d.queue, 'status', d.status,
                           'attempts', d.attempts, 'max_attempts', d.max_attempts,
                           'created_at', d.created_at, 'finished_at', d.finished_at,
                           'error', CASE WHEN d.event IN ('failed', 'dead-lettered')
                                         THEN d.error - 'traceback' END,
                           'cancelled_by', d.cancelled_by)))),
               d.delivery_queue, d.tries
        FROM due AS d
        WHERE d.event = ANY (d.events)
        RETURNING queue
    )
    SELECT count(*), array_agg(DISTINCT m.queue) INTO n, woken FROM made AS m;
    -- Workers of those queues that wait for work are woken (pgjobs.wake
    -- notifies only when one waits), as an enqueue wakes them.
    PERFORM pgjobs.wake(q) FROM unnest(woken) AS q;
    RETURN n;
END
$$;

COMMENT ON FUNCTION pgjobs.webhooks_fire(jsonb) IS
    'Enqueue the webhook deliveries (task pgjobs.webhook) for these job events, in the caller''s transaction; returns how many.';

-- The history trigger. Why here, and shaped so:
--
-- * Every way a job ends inserts it into pgjobs.job_history (complete.sql,
--   complete_one.sql, rescue.sql, pgjobs.cancel(), the bulk cancel, the
--   pgjobs.jobs view's trigger), so one trigger covers them all, present and
--   future, and a delivery can never commit without its outcome or the
--   reverse. Putting the INSERT of deliveries into each of those statements
--   instead would repeat it six times, and miss the next path.
-- * Statement-level, with a transition table: the check for an active
--   webhook runs once per statement, whatever the number of jobs it
--   finished, and without one that check (a scan of an empty table) is the
--   whole cost. A row-level trigger would call a function per finished job.
--   The transition table holds the statement's new rows in memory (a copy
--   of each row, which PostgreSQL makes as it inserts); only with an active
--   webhook are they read and turned into JSON.
-- * Failed attempts that will be retried stay in pgjobs.jobs_live. A row
--   trigger there (AFTER UPDATE ... WHEN OLD.status = 'running' AND
--   NEW.status = 'queued') would see them, but PostgreSQL re-reads the old
--   row of every updated row for an AFTER ROW trigger before testing WHEN:
--   every claim would pay for it. complete.sql and rescue.sql, the only
--   statements that record a failed attempt, call pgjobs.webhooks_fire
--   themselves, behind the same check for an active webhook.
CREATE FUNCTION pgjobs.webhooks_on_finish() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM pgjobs.webhooks WHERE active) THEN
        PERFORM pgjobs.webhooks_fire((
            SELECT jsonb_agg(jsonb_build_object(
                'id', f.id, 'task', f.task, 'queue', f.queue, 'status', f.status,
                'attempts', f.attempts, 'max_attempts', f.max_attempts,
                'created_at', f.created_at, 'finished_at', f.finished_at,
                'error', f.errors -> -1, 'cancelled_by', f.cancelled_by))
            FROM finished AS f
            WHERE f.task <> 'pgjobs.webhook'));
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER webhooks_on_finish
    AFTER INSERT ON pgjobs.job_history
    REFERENCING NEW TABLE AS finished
    FOR EACH STATEMENT EXECUTE FUNCTION pgjobs.webhooks_on_finish();

-- Old finished rows moved out of the live table (after the upgrade to 0009)
-- are not news.
ALTER FUNCTION pgjobs.move_finished_to_history(integer) SET pgjobs.webhooks = 'off';
"""

DOWNGRADE = r"""
ALTER FUNCTION pgjobs.move_finished_to_history(integer) RESET pgjobs.webhooks;
DROP TRIGGER webhooks_on_finish ON pgjobs.job_history;
DROP FUNCTION pgjobs.webhooks_on_finish();
DROP FUNCTION pgjobs.webhooks_fire(jsonb);
DROP TABLE pgjobs.webhooks;
"""


def upgrade() -> None:
    op.execute(UPGRADE)


def downgrade() -> None:
    op.execute(DOWNGRADE)
