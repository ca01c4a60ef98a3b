-- Claim up to :limit runnable jobs of :queue, a queue without limits whose
-- jobs have keys (queue_limited.sql says which), the keys taking turns:
-- within a priority, each key's oldest due job, one key after the other in
-- the order of their hash, starting after :after_turn (the turn this worker
-- served last; NULL for the first key), and round again; jobs without a key
-- take one turn together at the end of each round (pgjobs.claim_turns(),
-- migration 0017). Nothing while the queue is paused or has a limit.
--
-- The function locks the rows it picks (FOR NO KEY UPDATE SKIP LOCKED,
-- through the keyed index: two probes per key, however many jobs wait),
-- and the update reads them through the primary key, by the array in an
-- ARRAY(...) subquery run once per statement (an InitPlan), as in
-- claim_limited.sql. Each row carries `turn`, where the next claim of this
-- worker starts (the same on every row).
WITH chosen AS MATERIALIZED (
    SELECT c.ids, c.turn
    FROM pgjobs.claim_keyed(CAST(:queue AS text), CAST(:limit AS integer),
                            CAST(:after_turn AS integer)) AS c
),
claimed AS (
    UPDATE pgjobs.jobs_live AS j
    SET status = 'running',
        attempts = j.attempts + 1,
        worker_id = CAST(:worker_id AS bigint),
        started_at = now()
    WHERE j.id = ANY (ARRAY(SELECT unnest(c.ids) FROM chosen AS c))
      AND j.status <> 'running'
    RETURNING j.id, j.queue, j.task, j.args, j.priority, j.attempts, j.max_attempts, j.meta,
              j.run_at, j.snoozes, j.checkpoint, j.timeout
)
-- In claim order (the turns'), committed without waiting for the WAL
-- flush: see claim.sql.
SELECT cl.*, ch.turn
FROM chosen AS ch
JOIN claimed AS cl ON true
WHERE (SELECT set_config('synchronous_commit', 'off', true)) = 'off'
ORDER BY array_position(ch.ids, cl.id)
