-- Mark the schedules that are no longer in the code: they stop firing, and
-- their rows (with their last fire time) stay for history.
UPDATE pgjobs.schedules
SET active = false, removed_at = now(), updated_at = now()
WHERE active AND NOT (name = ANY (CAST(:names AS text[])))
RETURNING name
