-- "Run now": enqueue one job of a schedule, as its next tick would, but
-- outside the cron watermark (last_fired_at is untouched, so the regular ticks
-- still fire). Returns no row for an unknown schedule; a NULL id when an active
-- job holds the fingerprint.
SELECT s.name,
       pgjobs.enqueue(
           task => s.task,
           args => s.args,
           queue => s.queue,
           priority => CAST(s.priority AS integer),
           max_attempts => s.max_attempts,
           meta => jsonb_build_object('schedule', s.name, 'run_now_by', CAST(:who AS text))
       ) AS job_id
FROM pgjobs.schedules AS s
WHERE s.name = CAST(:name AS text)
