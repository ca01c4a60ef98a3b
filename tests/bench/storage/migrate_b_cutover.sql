-- Design B, online migration, step 1 of 2: the cutover. Workers stopped (or
-- restarted right after with the new statements). Everything here is catalog
-- work: the old table is renamed to jobs_live, keeping its rows, identity,
-- indexes and autovacuum settings; nothing is copied under the lock.
\set ON_ERROR_STOP on
\timing on
BEGIN;
SET LOCAL lock_timeout = '5s';
LOCK TABLE pgjobs.jobs IN ACCESS EXCLUSIVE MODE;
DROP VIEW pgjobs.failed_jobs, pgjobs.queue_stats, pgjobs.job_states;
ALTER TABLE pgjobs.jobs RENAME TO jobs_live;
-- Enforced for every new or updated row at once, validated once the old
-- finished rows are gone (step 2).
ALTER TABLE pgjobs.jobs_live ADD CONSTRAINT jobs_live_status CHECK (status IN ('queued', 'running')) NOT VALID;
CREATE VIEW pgjobs.jobs AS SELECT * FROM pgjobs.jobs_live UNION ALL SELECT * FROM pgjobs.job_history;
\i /tmp/storage/views.sql
\i /tmp/storage/functions_b.sql
COMMIT;
