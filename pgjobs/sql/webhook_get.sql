-- The webhook a delivery job is for, read when it runs (not copied into the
-- job when it fired): the secret stays out of pgjobs.jobs, and a changed URL,
-- secret or timeout applies to the deliveries still waiting for a retry.
SELECT url, secret, timeout, active
FROM pgjobs.webhooks
WHERE name = CAST(:name AS text)
