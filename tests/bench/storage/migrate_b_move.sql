-- Design B, online migration, step 2 of 2 (no exclusive lock): move the old
-- finished rows from jobs_live into job_history, 5,000 a transaction (psql
-- \watch or a loop until 0). Rows older than the oldest history partition
-- would fail to route: create partitions back far enough, or delete those
-- (past retention anyway).
WITH batch AS MATERIALIZED (
    SELECT id FROM pgjobs.jobs_live
    WHERE status IN ('succeeded', 'failed', 'cancelled')
    ORDER BY finished_at LIMIT 5000
    FOR UPDATE SKIP LOCKED
), moved AS (
    DELETE FROM pgjobs.jobs_live AS j USING batch WHERE j.id = batch.id RETURNING j.*
), ins AS (
    INSERT INTO pgjobs.job_history SELECT * FROM moved RETURNING 1
)
SELECT count(*) FROM ins;
