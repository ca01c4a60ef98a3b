-- Counts per queue and status from the queue_stats view, the age in seconds
-- of the oldest job that could run now, and whether the queue is paused.
SELECT s.queue,
       s.available,
       s.scheduled,
       s.running,
       s.succeeded,
       s.failed,
       s.cancelled,
       CAST(extract(epoch FROM s.oldest_available_age) AS double precision) AS oldest_available_seconds,
       coalesce(q.paused, false) AS paused
FROM pgjobs.queue_stats AS s
LEFT JOIN pgjobs.queues AS q ON q.name = s.queue
ORDER BY s.queue
