-- The queues that have queued jobs, as the CTE `queues` (a NULL row ends
-- it: read it with `WHERE queue IS NOT NULL`). Not a statement of its own
-- but the start of those that need it (queued_queues.sql,
-- unserved_queues.sql), which write `\include queues_with_queued_jobs`.
--
-- A recursive loose index scan through the fetch index (hashtext(queue),
-- priority, run_at, id WHERE status = 'queued'): one probe per queue, never
-- a read of the jobs themselves, however large the backlog. The hash leads
-- the index, so the walk goes in hash order; two queue names with the same
-- 32-bit hash show as one of them (the other is found once the first has
-- no queued job left).
WITH RECURSIVE queues AS (
    (SELECT queue FROM pgjobs.jobs_live WHERE status = 'queued' ORDER BY hashtext(queue) LIMIT 1)
    UNION ALL
    SELECT (
        SELECT j.queue
        FROM pgjobs.jobs_live AS j
        WHERE j.status = 'queued' AND hashtext(j.queue) > hashtext(q.queue)
        ORDER BY hashtext(j.queue)
        LIMIT 1
    )
    FROM queues AS q
    WHERE q.queue IS NOT NULL
)
