-- Record many outcomes in one statement.
--
-- Fenced: a row is changed only while it is still running under this worker
-- and this attempt. A job that the rescuer returned to the queue (or that
-- another worker has since claimed) is never overwritten by a late result.
--
-- A finished outcome (succeeded, failed) moves the job out of the live
-- table: the DELETE ... RETURNING feeds the INSERT into pgjobs.job_history,
-- in this statement, so at every commit the job is in exactly one of the
-- two, with the same id. A job whose task keeps no history (:keeps false)
-- is only deleted. A retry (status 'queued') stays live, updated in place.
-- The two data-modifying parts touch disjoint rows (u.status and the cancel
-- request tell them apart), as PostgreSQL requires of CTEs that change the
-- same table.
--
-- A job asked to stop (pgjobs.cancel() of a running job sets
-- cancel_requested_at) ends `cancelled`, whatever outcome its worker sends:
-- a result or a retry that arrives after the cancel never overwrites it.
--
-- The clients waiting in app.result() for a job that finishes here are told
-- through pg_notify('pgjobs_done', id): only the ids found in
-- pgjobs.result_waiters, an almost always empty table, so a batch nobody
-- waits for pays one probe of an empty index and sends nothing.
--
-- A failed attempt that goes back to the queue is the `failed` event of
-- webhooks (`retried`, below); a job that ends here fires its webhooks
-- through the trigger on pgjobs.job_history (migration 0011). Either way the
-- delivery jobs commit with the outcome, in this transaction.
WITH u AS (
    SELECT *
    FROM unnest(
        CAST(:ids AS bigint[]),
        CAST(:attempts AS integer[]),
        CAST(:statuses AS pgjobs.job_status[]),
        CAST(:delays AS double precision[]),
        CAST(:errors AS jsonb[]),
        CAST(:results AS jsonb[]),
        CAST(:keeps AS boolean[]),
        CAST(:snoozes AS boolean[])
    ) AS u(id, attempt, status, delay, error, result, keep, snooze)
),
finished AS (
    DELETE FROM pgjobs.jobs_live AS j
    USING u
    WHERE j.id = u.id
      AND (u.status <> 'queued' OR j.cancel_requested_at IS NOT NULL)
      -- Redundant with the join, on purpose: the statement is prepared, and
      -- a plan joining on `j.id = u.id` alone scanned the whole table and
      -- hashed it whenever the table was small enough to look cheap (5.2-5.7
      -- ms for 200 outcomes at 3,200 rows, 2.0 ms with this). The array
      -- condition always reads the rows through the primary key, in generic
      -- and custom plans.
      AND j.id = ANY (CAST(:ids AS bigint[]))
      -- The fence, wrapped in IS TRUE (same meaning, NULL counts as false) so
      -- the planner cannot use it to pick jobs_live_running_worker_idx: with
      -- statistics taken while the jobs were still queued, that index looks
      -- nearly empty, and a plan driven by it scans every running job of
      -- this worker once per outcome (measured: 500 ms for a batch of 200
      -- with 7,000 running). Only the primary key can drive this.
      AND (j.status = 'running'
           AND j.worker_id = CAST(:worker_id AS bigint)
           AND j.attempts = u.attempt) IS TRUE
    RETURNING j.*, u.status AS new_status, u.error AS new_error, u.result AS new_result,
              u.keep AS keep
),
kept AS (
    INSERT INTO pgjobs.job_history (id, queue, task, args, priority, status, run_at, attempts,
                                    max_attempts, fingerprint, worker_id, started_at, created_at,
                                    finished_at, errors, result, meta, cancel_requested_at,
                                    cancelled_by, snoozes, progress, checkpoint, timeout, key)
    SELECT id, queue, task, args, priority,
           CASE WHEN cancel_requested_at IS NULL THEN new_status ELSE 'cancelled' END,
           run_at, attempts, max_attempts, fingerprint, worker_id, started_at, created_at, now(),
           CASE WHEN new_error IS NULL THEN errors
                -- Who ran the attempt and from when: the dashboard shows each attempt's
                -- worker and duration.
                ELSE errors || jsonb_build_array(new_error || jsonb_build_object(
                    'at', now(), 'worker_id', worker_id, 'started_at', started_at)) END,
           CASE WHEN cancel_requested_at IS NULL THEN new_result END, meta, cancel_requested_at,
           cancelled_by, snoozes, progress,
           -- A checkpoint is for the next attempt: a success needs none.
           CASE WHEN new_status = 'succeeded' AND cancel_requested_at IS NULL THEN NULL
                ELSE checkpoint END,
           timeout, key
    FROM finished
    WHERE keep
),
requeued AS (
    UPDATE pgjobs.jobs_live AS j
    SET status = 'queued',
        run_at = now() + make_interval(secs => u.delay),
        finished_at = NULL,
        worker_id = NULL,
        -- A snooze (pgjobs.Snooze) does not count the attempt; it counts a snooze.
        attempts = CASE WHEN u.snooze THEN j.attempts - 1 ELSE j.attempts END,
        snoozes = CASE WHEN u.snooze THEN j.snoozes + 1 ELSE j.snoozes END,
        errors = CASE WHEN u.error IS NULL THEN j.errors
                      ELSE j.errors || jsonb_build_array(u.error || jsonb_build_object(
                          'at', now(), 'worker_id', j.worker_id, 'started_at', j.started_at)) END,
        result = u.result
    FROM u
    WHERE j.id = u.id
      AND u.status = 'queued'
      AND j.cancel_requested_at IS NULL
      AND j.id = ANY (CAST(:ids AS bigint[]))
      AND (j.status = 'running'
           AND j.worker_id = CAST(:worker_id AS bigint)
           AND j.attempts = u.attempt) IS TRUE
    RETURNING j.id, j.task, j.queue, j.attempts, j.max_attempts, j.created_at,
              u.error, u.snooze
),
retried AS (
    -- The webhooks of failed attempts (a snooze is not one). Without an
    -- active webhook this is one probe of pgjobs.webhooks, an empty table,
    -- per statement: no JSON is built and pgjobs.webhooks_fire, STRICT, is
    -- not called with the NULL that jsonb_agg gives for no rows.
    SELECT pgjobs.webhooks_fire(jsonb_agg(jsonb_build_object(
               'id', r.id, 'task', r.task, 'queue', r.queue, 'status', 'queued',
               'attempts', r.attempts, 'max_attempts', r.max_attempts,
               'created_at', r.created_at, 'error', r.error))) AS n
    FROM requeued AS r
    WHERE NOT r.snooze
      AND r.error IS NOT NULL
      AND EXISTS (SELECT 1 FROM pgjobs.webhooks WHERE active)
),
woken AS (
    SELECT count(pg_notify('pgjobs_done', CAST(w.job_id AS text))) AS n
    FROM (SELECT DISTINCT job_id FROM pgjobs.result_waiters
          WHERE job_id = ANY (CAST(:ids AS bigint[]))) AS w
    WHERE w.job_id IN (SELECT id FROM finished)
),
resolved AS (
    -- Workflows (migration 0014): the jobs that depend on these are queued
    -- when their last parent succeeded, cancelled when one did not. With no
    -- dependency row for them, a call that probes an empty table. It must be
    -- a call, not a join here: an enqueue with depends_on may commit its rows
    -- while this statement waits for a finished job's row lock, after this
    -- statement's snapshot was taken; the function's own statements see them.
    SELECT pgjobs.resolve_dependents(
               array_agg(id) FILTER (WHERE new_status = 'succeeded'
                                       AND cancel_requested_at IS NULL),
               array_agg(id) FILTER (WHERE new_status <> 'succeeded'
                                        OR cancel_requested_at IS NOT NULL)) AS n
    FROM finished
    HAVING count(*) > 0
),
tripped AS (
    -- Circuit breakers (migration 0018): the attempts that succeeded or
    -- failed (a retry's too; not a snooze, not a cancel), for the tasks that
    -- have a breaker. With no breaker at all, the EXISTS (an InitPlan, one
    -- look at an empty table) stops it before the outcomes are read.
    SELECT pgjobs.breakers_record(array_agg(o.task), array_agg(o.id), array_agg(o.queue),
                                  array_agg(o.ok)) AS n
    FROM (SELECT task, id, queue, new_status = 'succeeded' AS ok
          FROM finished
          WHERE new_status IN ('succeeded', 'failed') AND cancel_requested_at IS NULL
          UNION ALL
          SELECT task, id, queue, false
          FROM requeued
          WHERE error IS NOT NULL AND NOT snooze) AS o
    WHERE EXISTS (SELECT 1 FROM pgjobs.task_breakers)
    HAVING count(*) > 0
)
-- `woken`, `retried`, `resolved` and `tripped` run once, before the rows are
-- returned (InitPlans).
SELECT id FROM finished
WHERE (SELECT n FROM woken) >= 0
  AND (SELECT coalesce(n, 0) FROM retried) >= 0
  AND coalesce((SELECT n FROM resolved), 0) >= 0
  AND coalesce((SELECT n FROM tripped), 0) >= 0
UNION ALL
SELECT id FROM requeued
