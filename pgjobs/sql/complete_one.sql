-- Record one transactional job's success, inside the handler's own
-- transaction (pgjobs/worker/_transaction.py): the handler's writes and
-- the job's move to pgjobs.job_history commit together, or not at all.
--
-- Fenced exactly as complete.sql: the row is taken only while it is still
-- running under this worker and this attempt. No row back means the job
-- was rescued, cancelled or re-claimed meanwhile, and the caller rolls the
-- whole transaction back, the handler's writes with it.
--
-- The DELETE ... RETURNING feeds the INSERT into the history in this one
-- statement, so at every commit the job is in exactly one of the two tables.
-- A task that keeps no history (:keep false) is only deleted.
WITH finished AS (
    DELETE FROM pgjobs.jobs_live AS j
    WHERE j.id = CAST(:id AS bigint)
      -- IS TRUE, as in complete.sql: only the primary key may drive this.
      AND (j.status = 'running'
           AND j.worker_id = CAST(:worker_id AS bigint)
           AND j.attempts = CAST(:attempt AS integer)) IS TRUE
    RETURNING j.*
),
kept AS (
    -- A cancel requested while the handler ran came too late: its writes
    -- commit with this, so the job is recorded as succeeded (the request
    -- stays in cancel_requested_at). A success needs no checkpoint.
    INSERT INTO pgjobs.job_history (id, queue, task, args, priority, status, run_at, attempts,
                                    max_attempts, fingerprint, worker_id, started_at, created_at,
                                    finished_at, errors, result, meta, cancel_requested_at,
                                    cancelled_by, snoozes, progress, checkpoint, timeout, key)
    SELECT id, queue, task, args, priority, CAST('succeeded' AS pgjobs.job_status), run_at,
           attempts, max_attempts, fingerprint, worker_id, started_at, created_at, now(), errors,
           CAST(:result AS jsonb), meta, cancel_requested_at, cancelled_by, snoozes, progress,
           NULL, timeout, key
    FROM finished
    WHERE CAST(:keep AS boolean)
),
woken AS (
    -- Whoever waits on this job's result (app.result), as complete.sql does.
    SELECT count(pg_notify('pgjobs_done', CAST(w.job_id AS text))) AS n
    FROM (SELECT DISTINCT job_id FROM pgjobs.result_waiters
          WHERE job_id = CAST(:id AS bigint)) AS w
    WHERE w.job_id IN (SELECT id FROM finished)
),
resolved AS (
    -- Its dependents (migration 0014), as complete.sql does: queued when this
    -- was their last parent, in this same transaction.
    SELECT pgjobs.resolve_dependents(array_agg(id), NULL) AS n
    FROM finished
    HAVING count(*) > 0
),
tripped AS (
    -- Its task's circuit breaker (migration 0018), as complete.sql does: a
    -- success resets the count of failures, or closes the breaker of which
    -- it was the trial.
    SELECT pgjobs.breakers_record(array_agg(task), array_agg(id), array_agg(queue),
                                  array_agg(true)) AS n
    FROM finished
    WHERE EXISTS (SELECT 1 FROM pgjobs.task_breakers)
    HAVING count(*) > 0
)
SELECT id FROM finished
WHERE (SELECT n FROM woken) >= 0
  AND coalesce((SELECT n FROM resolved), 0) >= 0
  AND coalesce((SELECT n FROM tripped), 0) >= 0
