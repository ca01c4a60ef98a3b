-- The queues that have due jobs and no live worker serving them (a worker
-- is live while its heartbeat is fresher than :stale_after seconds): each
-- with the number of its due jobs, counted up to :cap, and the age in
-- seconds of its oldest due job (since its run_at).
--
-- Cheap however large the backlog: the queues with queued jobs are found
-- by skipping through the fetch index, one probe per queue (a recursive
-- loose index scan on hashtext(queue), the index's first key); only for a
-- queue that no worker serves are its due jobs counted (at most :cap of
-- them), and its oldest due job is the first entry of each of the five
-- priorities. A served queue costs one probe and a look at pgjobs.workers.
-- Two queue names with the same 32-bit hash would show as one of them. A
-- worker with '*' among its queues (--queues '*') serves every queue.
\include queues_with_queued_jobs
, unserved AS (
    SELECT q.queue
    FROM queues AS q
    WHERE q.queue IS NOT NULL
      AND NOT EXISTS (
          SELECT 1
          FROM pgjobs.workers AS w
          WHERE (q.queue = ANY (w.queues) OR '*' = ANY (w.queues))
            AND w.last_seen_at > now()
                - make_interval(secs => CAST(:stale_after AS double precision))
      )
)
SELECT u.queue,
       due.n AS due,
       extract(epoch FROM now() - oldest.run_at) AS oldest_due_seconds
FROM unserved AS u
CROSS JOIN LATERAL (
    SELECT count(*) AS n
    FROM (
        SELECT 1
        FROM pgjobs.jobs_live AS j
        WHERE j.status = 'queued'
          AND hashtext(j.queue) = hashtext(u.queue)
          AND j.queue = u.queue
          AND j.run_at <= now()
        LIMIT CAST(:cap AS integer)
    ) AS capped
) AS due
CROSS JOIN LATERAL (
    SELECT min(first.run_at) AS run_at
    FROM generate_series(0, 4) AS p (priority)
    CROSS JOIN LATERAL (
        SELECT j.run_at
        FROM pgjobs.jobs_live AS j
        WHERE j.status = 'queued'
          AND hashtext(j.queue) = hashtext(u.queue)
          AND j.queue = u.queue
          AND j.priority = p.priority
        ORDER BY j.run_at, j.id
        LIMIT 1
    ) AS first
) AS oldest
WHERE due.n > 0
ORDER BY u.queue
