-- Every circuit breaker and its state (pgjobs.task_breakers), with the
-- seconds until an open one lets a trial through (NULL unless open).
SELECT task, state, failures, cooldown, consecutive_failures, opened_at, retry_at,
       trial_job_id, updated_at,
       CASE WHEN state = 'open'
            THEN greatest(0, extract(epoch FROM retry_at - now()))::double precision
       END AS retry_in
FROM pgjobs.task_breakers
ORDER BY task
