-- `pgjobs doctor`: running jobs with the silence of their worker, NULL when
-- its row is gone.
SELECT j.id,
       j.queue,
       j.worker_id,
       CAST(extract(epoch FROM now() - w.last_seen_at) AS double precision) AS silent_seconds
FROM pgjobs.jobs_live AS j
LEFT JOIN pgjobs.workers AS w ON w.id = j.worker_id
WHERE j.status = 'running'
ORDER BY j.id
