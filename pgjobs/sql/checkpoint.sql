-- Save a running job's checkpoint (current_job().checkpoint()), fenced as a
-- completion is: only while it still runs under this worker and attempt.
-- No row back: the job was taken from this worker (rescued, or finished).
-- Through the primary key.
UPDATE pgjobs.jobs_live
SET checkpoint = CAST(:state AS jsonb)
WHERE id = CAST(:id AS bigint)
  AND (status = 'running'
       AND worker_id = CAST(:worker_id AS bigint)
       AND attempts = CAST(:attempt AS integer)) IS TRUE
RETURNING id
