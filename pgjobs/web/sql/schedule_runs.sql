-- The last :runs jobs each schedule enqueued (its ticks and its "run now"
-- jobs), newest first, found through the partial indexes of migration 0019:
-- a few index probes per schedule, whatever the size of the history.
SELECT s.name, r.id, CAST(r.status AS text) AS status, r.created_at, r.finished_at
FROM pgjobs.schedules AS s
CROSS JOIN LATERAL (
    SELECT j.id, j.status, j.created_at, j.finished_at
    FROM pgjobs.jobs AS j
    WHERE coalesce(j.meta -> 'cron' ->> 'schedule', j.meta ->> 'schedule') = s.name
      AND (j.meta ? 'cron' OR j.meta ? 'schedule')
    ORDER BY j.id DESC
    LIMIT CAST(:runs AS integer)
) AS r
ORDER BY s.name, r.id DESC
