-- Retry every job that matches, in one statement: the same change as
-- pgjobs.retry (back in line now with a fresh budget of attempts, the error
-- history kept), then one wake-up per queue touched, not one per job.
-- Returns one row per queue with the number of jobs retried there.
--
-- Fingerprints stay unique among active jobs: a job whose fingerprint an
-- active job holds is skipped, and of several matching jobs sharing one
-- fingerprint only the newest is retried. Without this, one such row would
-- make the whole statement fail on the unique index.
--
-- The wake-up is in the select list on purpose: a volatile call there runs
-- once per output row, whereas an unreferenced CTE would never run at all.
WITH candidates AS (
    SELECT j.id, j.fingerprint
    FROM pgjobs.job_history AS j
    WHERE j.status = CAST(:status AS pgjobs.job_status)
      AND j.status IN ('failed', 'cancelled')
      AND (CAST(:queue AS text) IS NULL OR j.queue = CAST(:queue AS text))
      AND (CAST(:task AS text) IS NULL OR j.task = CAST(:task AS text))
      -- No "fingerprint IS NULL OR": a NULL fingerprint matches nothing
      -- anyway, and the OR would keep this a subplan run per row, costed so
      -- high that JIT compiled it (about 450 ms before any row was read).
      AND NOT EXISTS (
          SELECT 1 FROM pgjobs.jobs_live AS active
          WHERE active.fingerprint = j.fingerprint AND active.status IN ('queued', 'running')
      )
), chosen AS (
    SELECT id FROM candidates WHERE fingerprint IS NULL
    UNION ALL
    (SELECT DISTINCT ON (fingerprint) id
     FROM candidates
     WHERE fingerprint IS NOT NULL
     ORDER BY fingerprint, id DESC)
), moved AS (
    -- Back from the history to the live table, with the same ids. A row
    -- retried meanwhile by someone else is gone from the history: skipped.
    DELETE FROM pgjobs.job_history AS j
     USING chosen
     WHERE j.id = chosen.id
       AND j.status = CAST(:status AS pgjobs.job_status)
    RETURNING j.*
), retried AS (
    INSERT INTO pgjobs.jobs_live (id, queue, task, args, priority, status, run_at, attempts,
                                  max_attempts, fingerprint, worker_id, started_at, created_at,
                                  finished_at, errors, result, meta, progress, checkpoint,
                                  timeout, key)
    SELECT id, queue, task, args, priority, 'queued', now(), 0, max_attempts, fingerprint,
           NULL, started_at, created_at, NULL, errors, result, meta, progress, checkpoint,
           timeout, key
    FROM moved
    RETURNING queue
), per_queue AS (
    SELECT queue, count(*) AS jobs FROM retried GROUP BY queue
)
SELECT queue, jobs, pgjobs.wake(queue) IS NOT NULL AS notified
FROM per_queue
ORDER BY queue
