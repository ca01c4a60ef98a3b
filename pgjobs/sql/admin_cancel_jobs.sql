-- Cancel every queued, blocked or running job that matches, in one statement. A
-- queued job moves to the history as cancelled; a running one is asked to
-- stop, as pgjobs.cancel() does (cancel_requested_at, and a notification to
-- its worker on the pgjobs_control channel), and ends cancelled when its
-- worker stops it. A job a worker claims while this runs is skipped: the row
-- is re-checked after its lock is released. :by names who asked (NULL: the
-- SQL role). Returns one row per queue with the number of jobs cancelled or
-- asked to stop there.
WITH cancelled AS (
    -- Out of the live table and into the history, in this statement.
    DELETE FROM pgjobs.jobs_live
     WHERE status = 'queued'
       AND (CAST(:queue AS text) IS NULL OR queue = CAST(:queue AS text))
       -- the fetch index leads with the queue's hash (migration 0006)
       AND (CAST(:queue AS text) IS NULL OR hashtext(queue) = hashtext(CAST(:queue AS text)))
       AND (CAST(:task AS text) IS NULL OR task = CAST(:task AS text))
    RETURNING *
), unblocked AS (
    -- Blocked jobs (waiting on depends_on, migration 0014) are cancelled too;
    -- a statement of their own, as the one above reads the fetch index.
    DELETE FROM pgjobs.jobs_live
     WHERE status = 'blocked'
       AND (CAST(:queue AS text) IS NULL OR queue = CAST(:queue AS text))
       AND (CAST(:task AS text) IS NULL OR task = CAST(:task AS text))
    RETURNING *
), kept AS (
    INSERT INTO pgjobs.job_history (id, queue, task, args, priority, status, run_at, attempts,
                                    max_attempts, fingerprint, worker_id, started_at, created_at,
                                    finished_at, errors, result, meta, cancel_requested_at,
                                    cancelled_by, snoozes, progress, checkpoint, timeout, key)
    SELECT id, queue, task, args, priority, 'cancelled', run_at, attempts, max_attempts,
           fingerprint, worker_id, started_at, created_at, now(), errors, result, meta,
           now(), coalesce(CAST(:by AS text), CAST(current_user AS text)), snoozes,
           progress, checkpoint, timeout, key
    FROM (SELECT * FROM cancelled UNION ALL SELECT * FROM unblocked) AS c
    RETURNING id, queue
), asked AS (
    UPDATE pgjobs.jobs_live
       SET cancel_requested_at = now(),
           cancelled_by = coalesce(CAST(:by AS text), CAST(current_user AS text))
     WHERE status = 'running'
       AND cancel_requested_at IS NULL
       AND (CAST(:queue AS text) IS NULL OR queue = CAST(:queue AS text))
       AND (CAST(:task AS text) IS NULL OR task = CAST(:task AS text))
    RETURNING id, queue, worker_id
), told AS (
    -- Volatile calls in aggregates run once per row; the counts are read below.
    SELECT (SELECT count(pg_notify('pgjobs_control', format('cancel %s %s', worker_id, id)))
            FROM asked) AS workers,
           (SELECT count(*) FROM (SELECT pgjobs.notify_done(array_agg(id)) FROM kept) AS d)
               AS waiters,
           -- The jobs that depend on the cancelled ones are cancelled too, recursively.
           coalesce((SELECT pgjobs.resolve_dependents(NULL, array_agg(id)) FROM kept
                     HAVING count(*) > 0), 0) AS dependents
)
SELECT queue, count(*) AS jobs
FROM (SELECT queue FROM kept UNION ALL SELECT queue FROM asked) AS changed
WHERE (SELECT workers + waiters + dependents FROM told) >= 0
GROUP BY queue
ORDER BY queue
