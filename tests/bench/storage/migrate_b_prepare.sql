-- Design B, online migration, step 0 (no lock on pgjobs.jobs): the history,
-- empty, with its partitions.
\set ON_ERROR_STOP on
BEGIN;
CREATE TABLE pgjobs.job_history (LIKE pgjobs.jobs INCLUDING DEFAULTS) PARTITION BY LIST (status);
ALTER TABLE pgjobs.job_history ALTER COLUMN finished_at SET NOT NULL;
CREATE TABLE pgjobs.job_history_succeeded PARTITION OF pgjobs.job_history FOR VALUES IN ('succeeded') PARTITION BY RANGE (finished_at);
CREATE TABLE pgjobs.job_history_failed    PARTITION OF pgjobs.job_history FOR VALUES IN ('failed')    PARTITION BY RANGE (finished_at);
CREATE TABLE pgjobs.job_history_cancelled PARTITION OF pgjobs.job_history FOR VALUES IN ('cancelled') PARTITION BY RANGE (finished_at);
CREATE INDEX job_history_id_idx ON pgjobs.job_history (id);
CREATE INDEX job_history_fp_idx ON pgjobs.job_history (fingerprint) WHERE fingerprint IS NOT NULL;
\i /tmp/storage/partitions.sql
SELECT pgjobs.proto_make_partitions('job_history', 10, 3);
COMMIT;
