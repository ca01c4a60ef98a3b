-- Every registered worker, freshest heartbeat first, with the jobs it runs
-- (read through jobs_running_worker_idx).
SELECT w.id,
       w.host,
       w.pid,
       w.queues,
       w.concurrency,
       w.started_at,
       w.last_seen_at,
       CAST(extract(epoch FROM now() - w.last_seen_at) AS double precision) AS heartbeat_age,
       ARRAY(
           SELECT j.id FROM pgjobs.jobs_live AS j
           WHERE j.status = 'running' AND j.worker_id = w.id
           ORDER BY j.id
           LIMIT 50
       ) AS running_jobs
FROM pgjobs.workers AS w
ORDER BY w.last_seen_at DESC, w.id
LIMIT 500
