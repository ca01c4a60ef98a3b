-- Claim up to :limit runnable jobs of :queue, a queue with a concurrency,
-- key_concurrency or rate limit (queue_limited.sql), without exceeding it
-- across all workers. The fast claims (claim.sql, claim_one_queue.sql) skip
-- such queues.
--
-- pgjobs.claim_within_limits() (migrations 0013, 0017 and 0018) picks the jobs:
-- it locks the queue's row in pgjobs.queues, so the claims of one limited
-- queue take turns, counts the queue's running jobs in a snapshot taken
-- after the lock (which sees the claims of the turn before), takes the rate
-- limit's tokens, and returns the ids of at most the jobs the limits leave
-- room for. The row lock lasts until this statement's transaction commits,
-- with the jobs made running. It cannot be one plain statement: a statement
-- reads one snapshot, taken before it waits for the lock, and would count
-- the running jobs without the claims it waited for.
--
-- The function is called once, in the MATERIALIZED CTE, and the update
-- reads the chosen rows through the primary key, by the array in an
-- ARRAY(...) subquery that runs once per statement (an InitPlan)
-- (tests/integration/test_plans.py). A chosen job that a claim of another
-- kind took meanwhile (a fast claim that began before the limit was set) is
-- skipped; one cancelled meanwhile is gone. The check says `<> 'running'`,
-- not `= 'queued'`: that would match the predicate of the partial fetch
-- index, and the planner then took that index, reading all of it for the
-- ids, instead of the primary key.
--
-- Each claimed job's row carries `rate_wait`: when the rate limit held the
-- claim back, the seconds until its next token, else NULL. The function
-- counts them from now(), the transaction's start; they are given here
-- counted from the end of the statement (clock_timestamp()), so that the
-- worker, counting from the reply, loses neither the wait for the queue
-- row's lock nor the statement's own time: at the default burst of 1 a
-- token taken late is lost for good (the next comes one step after it),
-- so each millisecond of those costs the rate. When nothing was
-- claimed but the rate held it back, one row comes with every job column
-- NULL and only `rate_wait`, so that the worker knows when to come back;
-- when nothing was claimed for another reason, no row.
--
-- In a queue with keyed jobs (and no key rate), the keys take turns within
-- a priority, as in claim_keyed.sql, starting after :after_turn (the turn
-- this worker served last, NULL for the first key); each row carries
-- `turn`, where its next claim of this queue starts.
--
-- :ended are the jobs this worker has finished and whose outcomes it has
-- not written yet (they are written in batches, every few milliseconds):
-- they still show as running, but no longer run, and do not count against
-- the limits.
WITH chosen AS MATERIALIZED (
    SELECT c.ids, c.rate_wait, c.turn
    FROM pgjobs.claim_within_limits(CAST(:queue AS text), CAST(:limit AS integer),
                                    CAST(:after_turn AS integer), CAST(:worker_id AS bigint),
                                    CAST(:ended AS bigint[])) AS c
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
-- In claim order, committed without waiting for the WAL flush: see claim.sql.
SELECT cl.*, ch.rate_wait - extract(epoch FROM clock_timestamp() - now()) AS rate_wait, ch.turn
FROM chosen AS ch
LEFT JOIN claimed AS cl ON true
WHERE (SELECT set_config('synchronous_commit', 'off', true)) = 'off'
  AND (cl.id IS NOT NULL OR ch.rate_wait IS NOT NULL)
ORDER BY cl.priority, cl.run_at, cl.id
