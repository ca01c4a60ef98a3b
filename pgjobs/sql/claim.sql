-- Claim up to :limit runnable jobs for one worker, in priority order.
--
-- Each queue is searched on its own (the LATERAL subquery), with `queue = q`
-- an equality: only then can the fetch index (hashtext(queue), priority,
-- run_at, id) hand rows over already in claim order, so a claim reads about
-- :limit index entries however long the queue is. `queue = ANY(array)`
-- looked equivalent, but the planner cannot keep index order across several
-- array elements: it read and sorted every queued row on each claim (5 ms at
-- 10,000 queued, growing with the backlog).
--
-- The index leads with the hash, so that every key is fixed-width (migration
-- 0006). `queue = q.name` drops the jobs of any other queue whose name has
-- the same hash; such a collision costs a claim the reading of that queue's
-- jobs that sort ahead, never a wrong job.
--
-- Each queue's search starts after a position, (:after_priorities,
-- :after_run_ats, :after_ids), one element per queue: the last job this
-- worker claimed from it, or (-1, -infinity, 0) for the start. The row
-- comparison is an index condition, so the scan begins there. While a long
-- transaction pins xmin, the index entries of every job claimed since cannot
-- be removed and a scan from the start reads all of them, on every claim
-- (0.31x the drain rate after two minutes). The fetcher goes back to the start
-- often enough that jobs placed before its position are not left behind
-- (pgjobs/worker/_fetcher.py).
--
-- Paused queues are removed from the list before the index is searched, and
-- so are queues with a concurrency, key_concurrency or rate limit: those
-- are claimed by claim_limited.sql, one claimer at a time, so this statement
-- can never take a limited queue past its limit.
-- With several queues, up to :limit rows per queue are locked and the best
-- :limit of them claimed; the other locks end with this statement.
--
-- The locking subquery sits behind a MATERIALIZED CTE on purpose: it is an
-- optimisation fence, so the planner can never turn it into a join that locks
-- more rows than it claims (a known trap with UPDATE ... WHERE id IN
-- (SELECT ... LIMIT n FOR UPDATE)). FOR NO KEY UPDATE is enough, because the
-- key is not changed, and does not block foreign keys pointing at jobs.
--
-- The claimed rows are updated through `id = ANY (ARRAY(...))`, not a join
-- with the CTE. The statement is prepared, and PostgreSQL soon runs it with a
-- generic plan, which cannot see :limit: it took the CTE for large and joined
-- it to a sequential scan of the whole table, on every claim (1.4 ms at 3,200
-- rows, growing with the history kept; a claim of 50 from 60,000 rows took
-- 4 ms). An array of ids is always looked up through the primary key.
WITH claimable AS MATERIALIZED (
    SELECT c.id
    FROM (
        SELECT *
        FROM unnest(
            CAST(:queues AS text[]),
            CAST(:after_priorities AS smallint[]),
            CAST(:after_run_ats AS timestamptz[]),
            CAST(:after_ids AS bigint[])
        ) AS u (name, after_priority, after_run_at, after_id)
        WHERE NOT EXISTS (
            SELECT 1 FROM pgjobs.queues AS p
            WHERE p.name = u.name
              AND (p.paused OR p.concurrency IS NOT NULL OR p.key_concurrency IS NOT NULL
                   OR p.rate_limit IS NOT NULL OR p.key_rate_limit IS NOT NULL)
        )
    ) AS q,
    LATERAL (
        SELECT id, priority, run_at
        FROM pgjobs.jobs_live
        WHERE status = 'queued'
          AND hashtext(queue) = hashtext(q.name)
          AND queue = q.name
          AND (priority, run_at, id) > (q.after_priority, q.after_run_at, q.after_id)
          AND run_at <= now()
          -- Circuit breakers (migration 0018): not a job of a task whose breaker
          -- is open or half-open, unless it is that breaker's trial. InitPlans, each
          -- run at most once per statement: with no breaker open, the first is true
          -- and the row passes at once. It comes first for the planner too: written
          -- as `task <> ALL (...)` alone, the condition is estimated to leave almost
          -- no row (on a queue of a few tasks), so the server chose a custom plan
          -- for every claim of the prepared statement, planning each anew (0.45 ms a
          -- claim, ~10% of a no-op drain); with the boolean in front the generic
          -- plan is kept, as it was before breakers.
          AND ((SELECT NOT EXISTS (SELECT FROM pgjobs.task_breakers AS tb WHERE tb.state <> 'closed'))
               OR task <> ALL (ARRAY(SELECT tb.task FROM pgjobs.task_breakers AS tb
                                     WHERE tb.state <> 'closed'))
               OR id = ANY (ARRAY(SELECT tb.trial_job_id FROM pgjobs.task_breakers AS tb
                                  WHERE tb.state = 'half_open')))
        ORDER BY priority, run_at, id
        LIMIT CAST(:limit AS integer)
        FOR NO KEY UPDATE SKIP LOCKED
    ) AS c
    ORDER BY c.priority, c.run_at, c.id
    LIMIT CAST(:limit AS integer)
),
claimed AS (
    UPDATE pgjobs.jobs_live AS j
    SET status = 'running',
        attempts = j.attempts + 1,
        worker_id = CAST(:worker_id AS bigint),
        started_at = now()
    WHERE j.id = ANY (ARRAY(SELECT id FROM claimable))
    RETURNING j.id, j.queue, j.task, j.args, j.priority, j.attempts, j.max_attempts, j.meta,
              j.run_at, j.snoozes, j.checkpoint, j.timeout
)
-- In claim order: the update returns rows in the order it found them.
-- The claim commits without waiting for its WAL to reach the disk: a claim
-- lost in a server crash only leaves its jobs queued, which at-least-once
-- allows, and it is always durable before its jobs' outcomes, whose commits
-- wait (WAL is flushed in order). Set for this statement's transaction only
-- (autocommit: the statement is the transaction), so it holds on any
-- connection, a transaction pooler's too. The uncorrelated subquery runs
-- once per statement (an InitPlan), not once per row.
SELECT * FROM claimed
WHERE (SELECT set_config('synchronous_commit', 'off', true)) = 'off'
ORDER BY priority, run_at, id
