-- Design A, online migration, step 3: the cutover, under ACCESS EXCLUSIVE on
-- the old pgjobs.jobs. Workers stopped. The old table becomes the live
-- partition: its remaining finished rows (those finished since step 2) are
-- moved, the CHECK proves every row is live (a scan of the whole old heap,
-- dead space included), so ATTACH skips its own scan.
\set ON_ERROR_STOP on
\timing on
BEGIN;
SET LOCAL lock_timeout = '5s';
LOCK TABLE pgjobs.jobs IN ACCESS EXCLUSIVE MODE;
\i /tmp/storage/migrate_a_move.sql
DROP VIEW pgjobs.failed_jobs, pgjobs.queue_stats, pgjobs.job_states;
ALTER TABLE pgjobs.jobs ADD CONSTRAINT jobs_live_status CHECK (status IN ('queued', 'running'));
ALTER TABLE pgjobs.jobs RENAME TO jobs_live;
ALTER TABLE pgjobs.jobs_live RENAME CONSTRAINT jobs_pkey TO jobs_live_pkey;
ALTER TABLE pgjobs.jobs_new RENAME TO jobs;
ALTER TABLE pgjobs.jobs ATTACH PARTITION pgjobs.jobs_live FOR VALUES IN ('queued', 'running');
\i /tmp/storage/views.sql
\i /tmp/storage/functions_a.sql
COMMIT;
