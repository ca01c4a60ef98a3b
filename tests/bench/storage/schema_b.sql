-- Design B: a live table (pgjobs.jobs_live: queued and running only) plus a
-- history, pgjobs.job_history, LIST (status) then RANGE (finished_at), one
-- partition a day. pgjobs.jobs becomes a UNION ALL view of both, so plain
-- SQL still reads every job. Applied to an EMPTY freshly migrated schema (0008).
\set ON_ERROR_STOP on
BEGIN;
DROP VIEW pgjobs.failed_jobs, pgjobs.queue_stats, pgjobs.job_states;
ALTER TABLE pgjobs.jobs RENAME TO jobs_live;
ALTER TABLE pgjobs.jobs_live RENAME CONSTRAINT jobs_pkey TO jobs_live_pkey;
DROP INDEX pgjobs.jobs_finished_idx, pgjobs.jobs_fingerprint_idx;
-- Only queued and running here.
ALTER TABLE pgjobs.jobs_live ADD CONSTRAINT jobs_live_status CHECK (status IN ('queued', 'running'));
CREATE TABLE pgjobs.job_history (LIKE pgjobs.jobs_live INCLUDING DEFAULTS)
    PARTITION BY LIST (status);
ALTER TABLE pgjobs.job_history ALTER COLUMN finished_at SET NOT NULL;
CREATE TABLE pgjobs.job_history_succeeded PARTITION OF pgjobs.job_history FOR VALUES IN ('succeeded') PARTITION BY RANGE (finished_at);
CREATE TABLE pgjobs.job_history_failed    PARTITION OF pgjobs.job_history FOR VALUES IN ('failed')    PARTITION BY RANGE (finished_at);
CREATE TABLE pgjobs.job_history_cancelled PARTITION OF pgjobs.job_history FOR VALUES IN ('cancelled') PARTITION BY RANGE (finished_at);
CREATE INDEX job_history_id_idx ON pgjobs.job_history (id);
CREATE INDEX job_history_fp_idx ON pgjobs.job_history (fingerprint) WHERE fingerprint IS NOT NULL;
CREATE INDEX jobs_live_fp_idx ON pgjobs.jobs_live (fingerprint) WHERE fingerprint IS NOT NULL;
\i /tmp/storage/partitions.sql
SELECT pgjobs.proto_make_partitions('job_history', 10, 3);
CREATE VIEW pgjobs.jobs AS
    SELECT * FROM pgjobs.jobs_live
    UNION ALL
    SELECT * FROM pgjobs.job_history;
\i /tmp/storage/views.sql
\i /tmp/storage/functions_b.sql
COMMIT;
