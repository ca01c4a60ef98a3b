-- Delete at most :batch jobs of one finished status that finished more than
-- :retention seconds ago, oldest first, and return how many went.
--
-- Only succeeded, failed and cancelled rows can match (the status list is
-- repeated here, whatever :status says), so a queued or running job is never
-- deleted; the list also lets the planner use jobs_finished_idx. The batch
-- bounds the transaction and its locks. The CTE is MATERIALIZED so the LIMIT
-- holds, and SKIP LOCKED leaves a row someone is touching for a later run.
WITH doomed AS MATERIALIZED (
    SELECT id
    FROM pgjobs.jobs
    WHERE status = CAST(:status AS pgjobs.job_status)
      AND status IN ('succeeded', 'failed', 'cancelled')
      AND finished_at < now() - make_interval(secs => CAST(:retention AS double precision))
    ORDER BY finished_at
    LIMIT CAST(:batch AS integer)
    FOR UPDATE SKIP LOCKED
),
deleted AS (
    DELETE FROM pgjobs.jobs AS j
    USING doomed
    WHERE j.id = doomed.id
    RETURNING 1
)
SELECT count(*) AS deleted FROM deleted
