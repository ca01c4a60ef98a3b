-- Pause or resume a schedule. A resumed schedule fires from now on: its
-- watermark moves to now (active_since), so the ticks it missed while paused
-- never fire, backfill or not. Returns no row for an unknown schedule.
UPDATE pgjobs.schedules
SET paused = CAST(:paused AS boolean),
    active_since = CASE WHEN paused AND NOT CAST(:paused AS boolean) THEN now()
                        ELSE active_since END
WHERE name = CAST(:name AS text)
RETURNING name, paused
