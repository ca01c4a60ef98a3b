-- Claim one tick: compare-and-set the schedule's watermark from the value the
-- caller read (:previous) to the tick. The caller inserts the tick's job in
-- the same transaction, and only when a row comes back.
--
-- This is the exactly-once guarantee (README, How it works: Cron, exactly
-- once), not the leader lock: only one transaction can move the watermark
-- away from a given value. A second claimer of the same tick blocks on the
-- row lock; when the first commits, READ COMMITTED re-checks the WHERE
-- clause against the new row, which no longer matches, so it gets no row
-- (and if the first rolls back, its job never existed and the second fires
-- the tick).
UPDATE pgjobs.schedules
SET last_fired_at = CAST(:tick AS timestamptz),
    next_fire_at = CAST(:next_fire_at AS timestamptz)
WHERE name = CAST(:name AS text)
  AND active
  AND last_fired_at IS NOT DISTINCT FROM CAST(:previous AS timestamptz)
RETURNING name
