-- Write the queue limits declared in an App's code (app.queue): parallel
-- arrays, one element per declared queue. A declaration is the whole of a
-- queue's limits, so a limit it leaves out is cleared. A row whose limits are
-- already these is left alone, so updated_at says when they last changed;
-- its paused flag is never touched, nor the rate limits' state
-- (rate_full_at, pgjobs.queue_key_rates: a new rate is held from the next claim, see migration
-- 0013). Queues the code does not declare keep what they have (a limit set
-- from SQL stays until changed there).
INSERT INTO pgjobs.queues AS q (
    name, concurrency, key_concurrency, rate_limit, rate_burst, key_rate_limit, key_rate_burst
)
SELECT *
FROM unnest(
    CAST(:names AS text[]),
    CAST(:concurrencies AS integer[]),
    CAST(:key_concurrencies AS integer[]),
    CAST(:rate_limits AS text[]),
    CAST(:rate_bursts AS integer[]),
    CAST(:key_rate_limits AS text[]),
    CAST(:key_rate_bursts AS integer[])
)
ON CONFLICT (name) DO UPDATE
    SET concurrency = excluded.concurrency,
        key_concurrency = excluded.key_concurrency,
        rate_limit = excluded.rate_limit,
        rate_burst = excluded.rate_burst,
        key_rate_limit = excluded.key_rate_limit,
        key_rate_burst = excluded.key_rate_burst,
        updated_at = now()
    WHERE (q.concurrency, q.key_concurrency, q.rate_limit, q.rate_burst, q.key_rate_limit,
           q.key_rate_burst)
          IS DISTINCT FROM
          (excluded.concurrency, excluded.key_concurrency, excluded.rate_limit, excluded.rate_burst,
           excluded.key_rate_limit, excluded.key_rate_burst)
RETURNING q.name
