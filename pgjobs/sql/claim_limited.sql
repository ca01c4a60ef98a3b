-- Claim up to :limit runnable jobs of :queue, a queue with a concurrency or
-- key_concurrency limit (queue_limited.sql), without exceeding it across all
-- workers. The fast claims (claim.sql, claim_one_queue.sql) skip such queues.
--
-- pgjobs.claim_limited() (migration 0012) picks the jobs: it locks the
-- queue's row in pgjobs.queues, so the claims of one limited queue take
-- turns, counts the queue's running jobs in a snapshot taken after the lock
-- (which sees the claims of the turn before), and returns the ids of at most
-- the jobs the limits leave room for. The row lock lasts until this
-- statement's transaction commits, with the jobs made running. It cannot be
-- one plain statement: a statement reads one snapshot, taken before it waits
-- for the lock, and would count the running jobs without the claims it
-- waited for.
--
-- The function is called in the ARRAY(...) subquery, which runs once per
-- statement (an InitPlan), and the update then reads the chosen rows through
-- the primary key (tests/integration/test_plans.py). A chosen job that a
-- claim of another kind took meanwhile (a fast claim that began before the
-- limit was set) is skipped; one cancelled meanwhile is gone. The check says
-- `<> 'running'`, not `= 'queued'`: that would match the predicate of the
-- partial fetch index, and the planner then took that index, reading all of
-- it for the ids, instead of the primary key.
WITH claimed AS (
    UPDATE pgjobs.jobs_live AS j
    SET status = 'running',
        attempts = j.attempts + 1,
        worker_id = CAST(:worker_id AS bigint),
        started_at = now()
    WHERE j.id = ANY (ARRAY(
        SELECT unnest(pgjobs.claim_limited(CAST(:queue AS text), CAST(:limit AS integer)))
    ))
      AND j.status <> 'running'
    RETURNING j.id, j.queue, j.task, j.args, j.priority, j.attempts, j.max_attempts, j.meta,
              j.run_at, j.snoozes, j.checkpoint, j.timeout
)
-- In claim order, committed without waiting for the WAL flush: see claim.sql.
SELECT * FROM claimed
WHERE (SELECT set_config('synchronous_commit', 'off', true)) = 'off'
ORDER BY priority, run_at, id
