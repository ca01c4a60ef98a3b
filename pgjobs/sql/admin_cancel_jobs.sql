-- Cancel every queued job that matches, in one statement. Running jobs are
-- left alone (their handlers are already executing), and a job a worker claims
-- while this runs is skipped: the row is re-checked after its lock is released.
-- Returns one row per queue with the number of jobs cancelled there.
WITH cancelled AS (
    UPDATE pgjobs.jobs
       SET status = 'cancelled', finished_at = now()
     WHERE status = 'queued'
       AND (CAST(:queue AS text) IS NULL OR queue = CAST(:queue AS text))
       -- the fetch index leads with the queue's hash (migration 0006)
       AND (CAST(:queue AS text) IS NULL OR hashtext(queue) = hashtext(CAST(:queue AS text)))
       AND (CAST(:task AS text) IS NULL OR task = CAST(:task AS text))
    RETURNING queue
)
SELECT queue, count(*) AS jobs
FROM cancelled
GROUP BY queue
ORDER BY queue
