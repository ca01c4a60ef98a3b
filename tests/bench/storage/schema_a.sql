-- Design A: pgjobs.jobs itself is partitioned. LIST (status): jobs_live holds
-- queued and running; each finished status has its own parent, RANGE
-- (finished_at), one partition a day (retention differs per status: 1 d
-- succeeded/cancelled, 7 d failed). Applied to an EMPTY freshly migrated schema (0008).
\set ON_ERROR_STOP on
BEGIN;
DROP VIEW pgjobs.failed_jobs, pgjobs.queue_stats, pgjobs.job_states;
DROP TABLE pgjobs.jobs;
CREATE SEQUENCE pgjobs.jobs_id_seq;
CREATE TABLE pgjobs.jobs (
    id           bigint              NOT NULL DEFAULT nextval('pgjobs.jobs_id_seq'),
    queue        pgjobs.queue_name   NOT NULL DEFAULT 'default',
    task         pgjobs.task_name    NOT NULL,
    args         pgjobs.job_args     NOT NULL DEFAULT '{}'::jsonb,
    priority     pgjobs.job_priority NOT NULL DEFAULT 2,
    status       pgjobs.job_status   NOT NULL DEFAULT 'queued',
    run_at       timestamptz         NOT NULL DEFAULT now(),
    attempts     pgjobs.attempt_count NOT NULL DEFAULT 0,
    max_attempts pgjobs.attempt_limit NOT NULL DEFAULT 3,
    fingerprint  text,
    worker_id    bigint,
    started_at   timestamptz,
    created_at   timestamptz NOT NULL DEFAULT now(),
    finished_at  timestamptz,
    errors       jsonb NOT NULL DEFAULT '[]'::jsonb,
    result       jsonb,
    meta         jsonb NOT NULL DEFAULT '{}'::jsonb,
    CONSTRAINT jobs_running_owned CHECK (status <> 'running' OR worker_id IS NOT NULL)
) PARTITION BY LIST (status);
ALTER SEQUENCE pgjobs.jobs_id_seq OWNED BY pgjobs.jobs.id;
CREATE TABLE pgjobs.jobs_live PARTITION OF pgjobs.jobs FOR VALUES IN ('queued', 'running')
    WITH (autovacuum_vacuum_scale_factor = 0.01, autovacuum_analyze_scale_factor = 0.02,
          autovacuum_vacuum_cost_delay = 0);
-- A PK on pgjobs.jobs would have to include status (and finished_at below):
-- uniqueness of id is per partition only.
ALTER TABLE pgjobs.jobs_live ADD PRIMARY KEY (id);
CREATE TABLE pgjobs.jobs_succeeded PARTITION OF pgjobs.jobs FOR VALUES IN ('succeeded') PARTITION BY RANGE (finished_at);
CREATE TABLE pgjobs.jobs_failed    PARTITION OF pgjobs.jobs FOR VALUES IN ('failed')    PARTITION BY RANGE (finished_at);
CREATE TABLE pgjobs.jobs_cancelled PARTITION OF pgjobs.jobs FOR VALUES IN ('cancelled') PARTITION BY RANGE (finished_at);
-- Partitioned indexes on the history: id (lookups, retry) and finished_at.
CREATE INDEX jobs_succeeded_id_idx ON pgjobs.jobs_succeeded (id);
CREATE INDEX jobs_failed_id_idx    ON pgjobs.jobs_failed (id);
CREATE INDEX jobs_cancelled_id_idx ON pgjobs.jobs_cancelled (id);
CREATE INDEX jobs_hist_fp_s ON pgjobs.jobs_succeeded (fingerprint) WHERE fingerprint IS NOT NULL;
CREATE INDEX jobs_hist_fp_f ON pgjobs.jobs_failed (fingerprint) WHERE fingerprint IS NOT NULL;
CREATE INDEX jobs_hist_fp_c ON pgjobs.jobs_cancelled (fingerprint) WHERE fingerprint IS NOT NULL;
-- The live indexes, as today (0001/0004/0006), on the live partition only.
CREATE INDEX jobs_fetch_idx ON pgjobs.jobs_live ((hashtext(queue)), priority, run_at, id) INCLUDE (queue)
    WHERE status = 'queued';
CREATE UNIQUE INDEX jobs_fingerprint_active_idx ON pgjobs.jobs_live (fingerprint)
    WHERE status IN ('queued', 'running') AND fingerprint IS NOT NULL;
CREATE INDEX jobs_running_worker_idx ON pgjobs.jobs_live (worker_id) WHERE status = 'running';
CREATE STATISTICS pgjobs.jobs_queue_status (mcv) ON queue, status FROM pgjobs.jobs_live;
\i /tmp/storage/partitions.sql
SELECT pgjobs.proto_make_partitions('jobs', 10, 3);
\i /tmp/storage/views.sql
\i /tmp/storage/functions_a.sql
COMMIT;
