-- Design B rescue: requeue in jobs_live, or move to job_history as failed.
WITH dead AS (
    DELETE FROM pgjobs.workers
    WHERE last_seen_at < now() - make_interval(secs => CAST(:stale_after AS double precision))
    RETURNING id
),
orphaned AS (
    SELECT j.id, j.attempts >= j.max_attempts AS exhausted
    FROM pgjobs.jobs_live AS j
    WHERE j.status = 'running'
      AND (j.worker_id IN (SELECT id FROM dead)
           OR NOT EXISTS (SELECT 1 FROM pgjobs.workers AS w WHERE w.id = j.worker_id))
    FOR NO KEY UPDATE SKIP LOCKED
),
lost AS (
    SELECT jsonb_build_array(jsonb_build_object(
        'attempt', 0, 'at', now(), 'type', 'pgjobs.WorkerLost',
        'message', 'worker stopped heartbeating while running this job', 'traceback', NULL)) AS e
),
failed AS (
    DELETE FROM pgjobs.jobs_live AS j
    USING orphaned
    WHERE j.id = orphaned.id AND orphaned.exhausted
    RETURNING j.*
),
archived AS (
    INSERT INTO pgjobs.job_history (id, queue, task, args, priority, status, run_at, attempts,
                                    max_attempts, fingerprint, worker_id, started_at, created_at,
                                    finished_at, errors, result, meta)
    SELECT id, queue, task, args, priority, 'failed', now(), attempts, max_attempts, fingerprint,
           NULL, started_at, created_at, now(), errors || (SELECT e FROM lost), result, meta
    FROM failed
    RETURNING id, queue, status
),
requeued AS (
    UPDATE pgjobs.jobs_live AS j
    SET status = 'queued', run_at = now(), worker_id = NULL,
        errors = j.errors || (SELECT e FROM lost)
    FROM orphaned
    WHERE j.id = orphaned.id AND NOT orphaned.exhausted
    RETURNING j.id, j.queue, j.status
),
rescued AS (SELECT * FROM archived UNION ALL SELECT * FROM requeued)
SELECT
    (SELECT count(*) FROM dead) AS dead_workers,
    count(*) FILTER (WHERE status = 'queued') AS requeued,
    count(*) FILTER (WHERE status = 'failed') AS failed,
    (SELECT count(*) FROM (
        SELECT pgjobs.wake(queue) FROM (SELECT DISTINCT queue FROM rescued WHERE status = 'queued') AS q
    ) AS w) AS woken
FROM rescued
