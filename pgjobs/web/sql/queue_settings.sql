-- Queues with settings (a queue without a row is not paused).
SELECT name, paused, updated_at FROM pgjobs.queues ORDER BY name
