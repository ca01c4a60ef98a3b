-- Give unfinished jobs back to the queue at shutdown. The interrupted attempt
-- is not counted: the job did not fail, the worker stopped. Waiting workers
-- of those queues are woken.
WITH released AS (
    UPDATE pgjobs.jobs_live
    SET status = 'queued', worker_id = NULL, started_at = NULL,
        attempts = greatest(attempts - 1, 0), run_at = now()
    WHERE id = ANY (CAST(:ids AS bigint[]))
      AND status = 'running'
      AND worker_id = CAST(:worker_id AS bigint)
    RETURNING queue
)
SELECT count(*) FROM (SELECT pgjobs.wake(queue) FROM (SELECT DISTINCT queue FROM released) AS q) AS w
