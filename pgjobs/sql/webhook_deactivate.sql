-- Mark the webhooks that were declared in code and are no longer: they stop
-- firing (deliveries already queued for them are dropped when they run), and
-- their rows stay. Rows added by SQL (origin 'sql') are never touched.
UPDATE pgjobs.webhooks
SET active = false, updated_at = now()
WHERE active AND origin = 'code' AND NOT (name = ANY (CAST(:names AS text[])))
RETURNING name
