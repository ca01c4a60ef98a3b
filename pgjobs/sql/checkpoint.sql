-- Save a running job's checkpoint (current_job().checkpoint()), fenced as a
-- completion is: only while it still runs under this worker and attempt.
-- No row back: the job was taken from this worker (rescued, or finished).
-- Through the primary key.
UPDATE pgjobs.jobs_live AS j
SET checkpoint = CAST(:state AS jsonb)
WHERE j.id = CAST(:id AS bigint)
  AND (j.status = 'running'
       AND j.worker_id = CAST(:worker_id AS bigint)
       AND j.attempts = CAST(:attempt AS integer)) IS TRUE
RETURNING j.id
