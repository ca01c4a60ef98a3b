-- Which of a worker's queues have a limit (concurrency, key_concurrency, or
-- a rate per queue or per key), and so are claimed by claim_limited.sql: the fetcher asks at start
-- and then about once a second, so that a limit set from SQL is claimed
-- under within about a second. In the meantime the fast claims skip the
-- queue by themselves, so its limit is never exceeded, only its jobs wait.
SELECT name
FROM pgjobs.queues
WHERE name = ANY (CAST(:queues AS text[]))
  AND (concurrency IS NOT NULL OR key_concurrency IS NOT NULL
       OR rate_limit IS NOT NULL OR key_rate_limit IS NOT NULL)
  AND NOT paused
ORDER BY name
