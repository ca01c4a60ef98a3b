-- `pgjobs doctor`: each queue with jobs due now: how many, the age of the
-- oldest, and whether the queue is paused.
SELECT j.queue,
       count(*) AS due,
       CAST(extract(epoch FROM now() - min(j.run_at)) AS double precision) AS oldest_seconds,
       coalesce(bool_or(q.paused), false) AS paused
FROM pgjobs.jobs_live AS j
LEFT JOIN pgjobs.queues AS q ON q.name = j.queue
WHERE j.status = 'queued' AND j.run_at <= now()
GROUP BY j.queue
ORDER BY j.queue
