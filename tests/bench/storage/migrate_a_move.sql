-- Design A, online migration, step 2 (no exclusive lock): move finished rows
-- into the new table's history, 5,000 a transaction, until 0. Moved rows are
-- invisible to pgjobs.jobs (and retry/the dashboard) until the cutover.
WITH batch AS MATERIALIZED (
    SELECT id FROM pgjobs.jobs
    WHERE status IN ('succeeded', 'failed', 'cancelled')
    ORDER BY finished_at LIMIT 5000
    FOR UPDATE SKIP LOCKED
), moved AS (
    DELETE FROM pgjobs.jobs AS j USING batch WHERE j.id = batch.id RETURNING j.*
), ins AS (
    INSERT INTO pgjobs.jobs_new SELECT * FROM moved RETURNING 1
)
SELECT count(*) FROM ins;
