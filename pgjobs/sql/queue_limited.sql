-- Which of a worker's queues are not claimed by the fast claims (claim.sql,
-- claim_one_queue.sql), and by what: `limited` when the queue has a limit
-- (concurrency, key_concurrency, or a rate per queue or per key), claimed
-- by claim_limited.sql; otherwise its queued jobs have keys, and
-- claim_keyed.sql claims it, the keys taking turns. The fetcher asks at
-- start and then about once a second, so that a limit set from SQL is
-- claimed under within about a second. In the meantime the fast claims skip
-- a limited queue by themselves, so its limit is never exceeded, only its
-- jobs wait; a queue whose first keyed jobs came meanwhile is claimed
-- oldest first until then.
--
-- Whether a queue has keyed jobs is one probe of the keyed index
-- (migration 0017), which holds no entry for a job without a key.
SELECT u.name, p.name IS NOT NULL AS limited
FROM unnest(CAST(:queues AS text[])) AS u (name)
LEFT JOIN pgjobs.queues AS p
  ON p.name = u.name
 AND (p.concurrency IS NOT NULL OR p.key_concurrency IS NOT NULL
      OR p.rate_limit IS NOT NULL OR p.key_rate_limit IS NOT NULL)
 AND NOT p.paused
WHERE p.name IS NOT NULL
   OR EXISTS (
       SELECT 1
       FROM pgjobs.jobs_live AS j
       WHERE j.status = 'queued' AND j.key IS NOT NULL
         AND hashtext(j.queue) = hashtext(u.name) AND j.queue = u.name
   )
ORDER BY u.name
