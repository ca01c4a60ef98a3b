-- "Delete all matching" on the jobs list: every finished job of one status,
-- optionally of one queue and one task, straight from the history (a finished
-- job has no dependents left waiting on it: its outcome already released or
-- cancelled them). Returns how many went.
WITH gone AS (
    DELETE FROM pgjobs.job_history
    WHERE status = CAST(:status AS pgjobs.job_status)
      AND (CAST(:queue AS text) IS NULL OR queue = CAST(:queue AS text))
      AND (CAST(:task AS text) IS NULL OR task = CAST(:task AS text))
    RETURNING 1
)
SELECT count(*) AS deleted FROM gone
