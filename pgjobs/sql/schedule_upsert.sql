-- Write the schedules declared in an App's code: parallel arrays, one element
-- per schedule. The watermark (last_fired_at) of a known schedule is kept. A
-- schedule that was inactive becomes active again from now on: ticks from the
-- time it was gone never fire. Rows whose definition did not change are left
-- alone, so updated_at says when a definition last changed.
INSERT INTO pgjobs.schedules AS s (
    name, expression, timezone, task, args, queue, priority, max_attempts, backfill,
    skip_if_running, next_fire_at
)
SELECT *
FROM unnest(
    CAST(:names AS text[]),
    CAST(:expressions AS text[]),
    CAST(:timezones AS text[]),
    CAST(:tasks AS text[]),
    CAST(:args AS jsonb[]),
    CAST(:queues AS text[]),
    CAST(:priorities AS smallint[]),
    CAST(:max_attempts AS integer[]),
    CAST(:backfills AS interval[]),
    CAST(:skip_if_running AS boolean[]),
    CAST(:next_fire_ats AS timestamptz[])
)
ON CONFLICT (name) DO UPDATE SET
    expression = excluded.expression,
    timezone = excluded.timezone,
    task = excluded.task,
    args = excluded.args,
    queue = excluded.queue,
    priority = excluded.priority,
    max_attempts = excluded.max_attempts,
    backfill = excluded.backfill,
    skip_if_running = excluded.skip_if_running,
    next_fire_at = CASE
        WHEN s.active AND s.expression = excluded.expression AND s.timezone = excluded.timezone
             AND s.next_fire_at IS NOT NULL
        THEN s.next_fire_at ELSE excluded.next_fire_at END,
    active = true,
    active_since = CASE WHEN s.active THEN s.active_since ELSE now() END,
    removed_at = NULL,
    updated_at = now()
WHERE NOT s.active
   OR (s.expression, s.timezone, s.task, s.args, s.queue, s.priority, s.max_attempts,
       s.backfill, s.skip_if_running)
      IS DISTINCT FROM
      (excluded.expression, excluded.timezone, excluded.task, excluded.args, excluded.queue,
       excluded.priority, excluded.max_attempts, excluded.backfill, excluded.skip_if_running)
RETURNING name
