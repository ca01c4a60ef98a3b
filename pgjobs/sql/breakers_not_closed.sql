-- The circuit breakers that hold their task's jobs now (open or half-open),
-- for the leader's log of their changes (pgjobs/worker/_breakers.py). A scan
-- of a table of one row per task with a breaker.
SELECT task, state, consecutive_failures, retry_at, trial_job_id
FROM pgjobs.task_breakers
WHERE state <> 'closed'
ORDER BY task
