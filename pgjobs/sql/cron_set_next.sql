-- Refresh a schedule's next fire time (for people and `pgjobs cron list`)
-- when it moved without a fire, after missed ticks were skipped.
UPDATE pgjobs.schedules
SET next_fire_at = CAST(:next_fire_at AS timestamptz)
WHERE name = CAST(:name AS text)
  AND next_fire_at IS DISTINCT FROM CAST(:next_fire_at AS timestamptz)
