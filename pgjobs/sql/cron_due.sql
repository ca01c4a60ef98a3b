-- The database clock, and every active schedule not paused, with its watermark. The
-- leader plans ticks against this clock, never against its own host's.
-- The LEFT JOIN returns the clock even when there is no schedule.
SELECT now() AS now, s.name, s.expression, s.timezone, s.task, CAST(s.args AS text) AS args,
       s.queue, s.priority, s.max_attempts, s.backfill, s.skip_if_running,
       s.last_fired_at, s.next_fire_at, s.active_since
FROM (SELECT 1) AS clock
LEFT JOIN pgjobs.schedules AS s ON s.active AND NOT s.paused  -- paused: no tick (migration 0019)
ORDER BY s.name
