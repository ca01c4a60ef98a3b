-- claim.sql for a worker of one queue (the usual case), with the same
-- semantics: up to :limit runnable jobs of :queue in priority order,
-- starting after (:after_priority, :after_run_at, :after_id), nothing while
-- the queue is paused or has a limit, of concurrency or rate
-- (claim_limited.sql claims those).
-- Without the per-queue LATERAL over an unnested list and the merge sort it
-- needs, a claim costs the server about 0.3 ms less
-- (0.52 against 0.75-1.05 ms for one job, measured from the worker): most of
-- the gap between an idle worker's wake-up and the raw-SQL reference's.
--
-- The fetch index leads with hashtext(queue) (migration 0006); the hash
-- condition is what lets the scan use it, and `queue = :queue` drops the
-- jobs of any other queue whose name has the same hash (a collision costs
-- reading them, never a wrong job).
--
-- The rows are locked in the ARRAY(...) subquery, which the planner runs
-- once, as an InitPlan, before the update: the same optimisation fence as the
-- MATERIALIZED CTE of claim.sql, and the update reads the claimed rows
-- through the primary key in every plan (tests/integration/test_plans.py).
WITH claimed AS (
    UPDATE pgjobs.jobs_live AS j
    SET status = 'running',
        attempts = j.attempts + 1,
        worker_id = CAST(:worker_id AS bigint),
        started_at = now()
    WHERE j.id = ANY (ARRAY(
        SELECT id
        FROM pgjobs.jobs_live
        WHERE status = 'queued'
          AND hashtext(queue) = hashtext(CAST(:queue AS text))
          AND queue = CAST(:queue AS text)
          AND (priority, run_at, id) > (CAST(:after_priority AS smallint),
                                        CAST(:after_run_at AS timestamptz),
                                        CAST(:after_id AS bigint))
          AND run_at <= now()
          -- Circuit breakers (migration 0018), as in claim.sql, which says why
          -- "no breaker open" comes first (the generic plan is kept).
          AND ((SELECT NOT EXISTS (SELECT FROM pgjobs.task_breakers AS tb WHERE tb.state <> 'closed'))
               OR task <> ALL (ARRAY(SELECT tb.task FROM pgjobs.task_breakers AS tb
                                     WHERE tb.state <> 'closed'))
               OR id = ANY (ARRAY(SELECT tb.trial_job_id FROM pgjobs.task_breakers AS tb
                                  WHERE tb.state = 'half_open')))
          AND NOT EXISTS (
              SELECT 1 FROM pgjobs.queues AS p
              WHERE p.name = CAST(:queue AS text)
                AND (p.paused OR p.concurrency IS NOT NULL OR p.key_concurrency IS NOT NULL
                     OR p.rate_limit IS NOT NULL OR p.key_rate_limit IS NOT NULL)
          )
        ORDER BY priority, run_at, id
        LIMIT CAST(:limit AS integer)
        FOR NO KEY UPDATE SKIP LOCKED
    ))
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
