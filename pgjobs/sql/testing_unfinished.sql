-- How many jobs of :queues are due or running: pgjobs.testing drains until none are.
SELECT count(*) AS unfinished
FROM pgjobs.jobs_live
WHERE queue = ANY (CAST(:queues AS text[]))
  AND (status = 'running' OR (status = 'queued' AND run_at <= now()))
