-- Set a queue's limits from the dashboard or the API (all six at once, as
-- checked by pgjobs/_queue.py; NULL: no limit), keeping its paused flag and
-- its rate state, as a worker's declaration does (queue_limits_upsert.sql).
-- The next claim keeps to them; the CHECK constraints refuse what the
-- checks refuse. Idle workers of the queue are woken: a limit raised or
-- removed leaves room that no job's end announces.
WITH changed AS (
    INSERT INTO pgjobs.queues AS q (
        name, concurrency, key_concurrency, rate_limit, rate_burst, key_rate_limit,
        key_rate_burst, updated_at
    )
    VALUES (
        CAST(:queue AS text),
        CAST(:concurrency AS integer),
        CAST(:key_concurrency AS integer),
        CAST(:rate_limit AS text),
        CAST(:rate_burst AS integer),
        CAST(:key_rate_limit AS text),
        CAST(:key_rate_burst AS integer),
        now()
    )
    ON CONFLICT (name) DO UPDATE
        SET concurrency = excluded.concurrency,
            key_concurrency = excluded.key_concurrency,
            rate_limit = excluded.rate_limit,
            rate_burst = excluded.rate_burst,
            key_rate_limit = excluded.key_rate_limit,
            key_rate_burst = excluded.key_rate_burst,
            updated_at = excluded.updated_at
    RETURNING q.name, q.paused
)
SELECT name, paused, pgjobs.wake(name) IS NULL AS woken FROM changed
