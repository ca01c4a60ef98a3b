-- Return jobs held by dead workers to the queue, or fail them when no
-- attempts remain. A worker is dead when its heartbeat is older than
-- :stale_after seconds; its row is removed in the same statement. Jobs whose
-- worker row is already gone are rescued too.
--
-- All CTEs share one snapshot, so the DELETE's victims are matched through
-- `dead`, not through the NOT EXISTS (which still sees them).
WITH dead AS (
    DELETE FROM pgjobs.workers
    WHERE last_seen_at < now() - make_interval(secs => CAST(:stale_after AS double precision))
    RETURNING id
),
orphaned AS (
    SELECT j.id
    FROM pgjobs.jobs_live AS j
    WHERE j.status = 'running'
      AND (j.worker_id IN (SELECT id FROM dead)
           OR NOT EXISTS (SELECT 1 FROM pgjobs.workers AS w WHERE w.id = j.worker_id))
    FOR NO KEY UPDATE SKIP LOCKED
),
rescued AS (
    UPDATE pgjobs.jobs AS j
    SET status = CASE WHEN j.attempts >= j.max_attempts
                      THEN 'failed'::pgjobs.job_status ELSE 'queued'::pgjobs.job_status END,
        finished_at = CASE WHEN j.attempts >= j.max_attempts THEN now() END,
        run_at = now(),
        errors = j.errors || jsonb_build_array(jsonb_build_object(
            'attempt', j.attempts,
            'at', now(),
            'type', 'pgjobs.WorkerLost',
            'message', format('worker %s stopped heartbeating while running this job', j.worker_id),
            'traceback', NULL)),
        worker_id = NULL
    FROM orphaned
    WHERE j.id = orphaned.id AND j.status = 'running'
    RETURNING j.id, j.queue, j.status
)
SELECT
    (SELECT count(*) FROM dead) AS dead_workers,
    count(*) FILTER (WHERE status = 'queued') AS requeued,
    count(*) FILTER (WHERE status = 'failed') AS failed,
    (SELECT count(*) FROM (
        SELECT pgjobs.wake(queue) FROM (SELECT DISTINCT queue FROM rescued WHERE status = 'queued') AS q
    ) AS w) AS woken
FROM rescued
