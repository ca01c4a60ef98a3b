-- Every schedule, active ones first, for `pgjobs cron list`.
SELECT name, expression, timezone, task, queue, priority, CAST(args AS text) AS args,
       backfill, skip_if_running, next_fire_at, last_fired_at, active, removed_at,
       now() AS now
FROM pgjobs.schedules
ORDER BY active DESC, name
