-- Queues with settings (a queue without a row is not paused and has no limit).
SELECT name, paused, concurrency, key_concurrency, rate_limit, rate_burst, key_rate_limit,
       key_rate_burst, updated_at
FROM pgjobs.queues
ORDER BY name
