-- Exact counts of the active jobs per queue, and the age of the oldest job
-- that could run now. Both scans stay inside the partial indexes
-- (jobs_fetch_idx for queued, jobs_running_worker_idx for running), whose size
-- follows the backlog, not the history.
WITH queued AS (
    SELECT queue,
           count(*) FILTER (WHERE run_at <= now()) AS available,
           count(*) FILTER (WHERE run_at > now()) AS scheduled,
           CAST(extract(epoch FROM now() - min(run_at) FILTER (WHERE run_at <= now()))
                AS double precision) AS oldest_available_seconds
    FROM pgjobs.jobs_live
    WHERE status = 'queued'
    GROUP BY queue
), running AS (
    SELECT queue, count(*) AS running
    FROM pgjobs.jobs_live
    WHERE status = 'running'
    GROUP BY queue
)
SELECT coalesce(q.queue, r.queue) AS queue,
       coalesce(q.available, 0) AS available,
       coalesce(q.scheduled, 0) AS scheduled,
       coalesce(r.running, 0) AS running,
       q.oldest_available_seconds
FROM queued AS q
FULL JOIN running AS r ON r.queue = q.queue
