-- The dashboard's GET /metrics: per queue, the active jobs by state and the
-- age of the oldest due one. Each count stays inside a partial index (the
-- fetch index for queued jobs, jobs_running_worker_idx for running ones),
-- whose size follows the backlog, not the history. A queue with no active
-- job is listed too, with zeros, when it has settings or a live worker
-- (heard from within :stale_after seconds) serves it: its series then drop
-- to 0 when it drains instead of vanishing.
WITH queued AS (
    SELECT queue,
           count(*) FILTER (WHERE run_at <= now()) AS available,
           count(*) FILTER (WHERE run_at > now()) AS scheduled,
           CAST(extract(epoch FROM now() - min(run_at) FILTER (WHERE run_at <= now()))
                AS double precision) AS oldest_due_seconds
    FROM pgjobs.jobs_live
    WHERE status = 'queued'
    GROUP BY queue
), running AS (
    SELECT queue, count(*) AS running
    FROM pgjobs.jobs_live
    WHERE status = 'running'
    GROUP BY queue
), known AS (
    SELECT queue FROM queued
    UNION
    SELECT queue FROM running
    UNION
    SELECT name FROM pgjobs.queues
    UNION
    SELECT served.queue
    FROM pgjobs.workers AS w, unnest(w.queues) AS served (queue)
    WHERE w.last_seen_at > now() - make_interval(secs => CAST(:stale_after AS double precision))
      AND served.queue <> '*'  -- a worker of every queue (--queues '*'), not a queue
)
SELECT k.queue,
       coalesce(q.available, 0) AS available,
       coalesce(q.scheduled, 0) AS scheduled,
       coalesce(r.running, 0) AS running,
       coalesce(q.oldest_due_seconds, 0) AS oldest_due_seconds
FROM known AS k
LEFT JOIN queued AS q ON q.queue = k.queue
LEFT JOIN running AS r ON r.queue = k.queue
ORDER BY k.queue
