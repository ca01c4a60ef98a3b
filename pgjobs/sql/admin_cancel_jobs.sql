-- Cancel every queued job that matches, in one statement. Running jobs are
-- left alone (their handlers are already executing), and a job a worker claims
-- while this runs is skipped: the row is re-checked after its lock is released.
-- Returns one row per queue with the number of jobs cancelled there.
WITH cancelled AS (
    -- Out of the live table and into the history, in this statement.
    DELETE FROM pgjobs.jobs_live
     WHERE status = 'queued'
       AND (CAST(:queue AS text) IS NULL OR queue = CAST(:queue AS text))
       -- the fetch index leads with the queue's hash (migration 0006)
       AND (CAST(:queue AS text) IS NULL OR hashtext(queue) = hashtext(CAST(:queue AS text)))
       AND (CAST(:task AS text) IS NULL OR task = CAST(:task AS text))
    RETURNING *
), kept AS (
    INSERT INTO pgjobs.job_history (id, queue, task, args, priority, status, run_at, attempts,
                                    max_attempts, fingerprint, worker_id, started_at, created_at,
                                    finished_at, errors, result, meta)
    SELECT id, queue, task, args, priority, 'cancelled', run_at, attempts, max_attempts,
           fingerprint, worker_id, started_at, created_at, now(), errors, result, meta
    FROM cancelled
    RETURNING queue
)
SELECT queue, count(*) AS jobs
FROM kept
GROUP BY queue
ORDER BY queue
