-- Every schedule, active ones first.
SELECT name, expression, timezone, task, queue, priority, args, skip_if_running,
       next_fire_at, last_fired_at, active, removed_at, paused
FROM pgjobs.schedules
ORDER BY active DESC, name
LIMIT 1000
