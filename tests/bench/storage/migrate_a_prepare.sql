-- Design A, online migration, step 1 (no exclusive lock on pgjobs.jobs): the
-- new partitioned table, without its live partition yet.
\set ON_ERROR_STOP on
BEGIN;
CREATE TABLE pgjobs.jobs_new (LIKE pgjobs.jobs INCLUDING DEFAULTS INCLUDING CONSTRAINTS) PARTITION BY LIST (status);
ALTER TABLE pgjobs.jobs_new ALTER COLUMN id SET DEFAULT nextval('pgjobs.jobs_id_seq');
CREATE TABLE pgjobs.jobs_succeeded PARTITION OF pgjobs.jobs_new FOR VALUES IN ('succeeded') PARTITION BY RANGE (finished_at);
CREATE TABLE pgjobs.jobs_failed    PARTITION OF pgjobs.jobs_new FOR VALUES IN ('failed')    PARTITION BY RANGE (finished_at);
CREATE TABLE pgjobs.jobs_cancelled PARTITION OF pgjobs.jobs_new FOR VALUES IN ('cancelled') PARTITION BY RANGE (finished_at);
CREATE INDEX jobs_succeeded_id_idx ON pgjobs.jobs_succeeded (id);
CREATE INDEX jobs_failed_id_idx    ON pgjobs.jobs_failed (id);
CREATE INDEX jobs_cancelled_id_idx ON pgjobs.jobs_cancelled (id);
\i /tmp/storage/partitions.sql
SELECT pgjobs.proto_make_partitions('jobs', 10, 3);
COMMIT;
