-- Return jobs held by dead workers to the queue, or fail them when no
-- attempts remain, and remove the dead workers' rows. Jobs whose worker row
-- is already gone are rescued too. A worker is dead when either:
--
-- * its heartbeat is older than :stale_after seconds: what a closed socket
--   cannot show, a hung process or a network partition that leaves the
--   server believing the connection open; or
-- * it is marked as holding a liveness lock (pgjobs/sql/liveness_lock.sql)
--   and its lock has been missing for :grace seconds: the server freed it
--   when the worker's process or connection died, even by SIGKILL. The
--   rescuer carries the ids it saw lockless on earlier passes in :suspects,
--   each with :suspected_at, the `at` of the pass that first saw it; one
--   seen at least :grace seconds ago and lockless still is dead. A live
--   worker whose listener reconnects takes its lock again first thing,
--   well within the grace.
--
-- pg_locks is read, no lock is taken: trying the worker's lock would hold
-- it for a moment, and a live worker reconnecting at that moment would be
-- refused its own lock; reading races with nobody. Advisory locks belong to
-- a database, hence the `database` filter (pgjobs in two databases of one
-- server has two worker 1s).
--
-- After the server restarts, or when every connection to this database
-- was cut, every lock is gone at once and every listener is reconnecting
-- (within about a second). So a missing lock counts only once the oldest
-- client connection to this database is :settle seconds old (`settled`);
-- before that, the heartbeat alone decides. (A connection that
-- pg_stat_activity does not show us, another role's, cannot make the
-- rescuer hasty: it only makes that oldest one younger.)
--
-- It also returns the ids of the marked workers that are lockless now, for
-- the next pass, and `at`, this pass's now().
--
-- Cost, run every half second by the leader: pg_locks and pg_stat_activity
-- are read from shared memory, in time proportional to the locks held and
-- the connections open in the whole server; pgjobs.workers (a row per live
-- worker) is scanned; the running jobs are read through
-- jobs_live_running_worker_idx, the partial index of running jobs, so the
-- statement never touches queued or finished rows. Measured on PostgreSQL
-- 15 with 50 workers holding their locks, 2,000 running jobs and 1,010,000
-- queued and finished rows: 0.7 ms of execution at the median, custom or
-- generic plan, when nobody is dead (of which pg_locks 0.05 ms,
-- pg_stat_activity 0.13 ms, the running jobs 0.26 ms).
--
-- The orphaned ids are handed to the UPDATE as an array (an InitPlan), so
-- that it finds them through the primary key in every plan; joined to it,
-- the planner could hash the whole table (tests/integration/test_rescuer.py).
--
-- Jobs with no attempts left move to pgjobs.job_history as failed, in this
-- statement; the others are requeued in place. A job that was asked to stop
-- (cancel_requested_at) is never requeued: it moves to the history as
-- cancelled. Clients waiting on a job that ends here are told
-- (pgjobs.notify_done).
--
-- All CTEs share one snapshot, so the DELETE's victims are matched through
-- `dead`, not through the NOT EXISTS (which still sees them).
WITH settled AS (
    SELECT coalesce(min(backend_start), now())
           <= now() - make_interval(secs => CAST(:settle AS double precision)) AS yes
    FROM pg_stat_activity
    WHERE datname = current_database() AND backend_type = 'client backend'
),
held AS MATERIALIZED (
    SELECT CAST(objid AS bigint) AS objid
    FROM pg_locks
    WHERE locktype = 'advisory'
      AND objsubid = 2
      AND granted
      AND CAST(classid AS bigint) = CAST(:classid AS bigint)
      AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
),
lockless AS (
    SELECT w.id
    FROM pgjobs.workers AS w
    WHERE w.meta ? 'liveness_lock'
      AND (SELECT yes FROM settled)
      AND NOT EXISTS (SELECT 1 FROM held WHERE held.objid = (w.id & 4294967295))
),
dead AS (
    DELETE FROM pgjobs.workers AS w
    WHERE w.last_seen_at < now() - make_interval(secs => CAST(:stale_after AS double precision))
       OR w.id IN (
           SELECT l.id
           FROM lockless AS l
           JOIN unnest(CAST(:suspects AS bigint[]), CAST(:suspected_at AS timestamptz[]))
                AS s (id, since) ON s.id = l.id
           WHERE s.since <= now() - make_interval(secs => CAST(:grace AS double precision))
       )
    RETURNING w.id,
              w.last_seen_at >= now() - make_interval(
                  secs => CAST(:stale_after AS double precision)) AS by_lock
),
orphaned AS (
    SELECT j.id, (j.attempts >= j.max_attempts OR j.cancel_requested_at IS NOT NULL) AS exhausted
    FROM pgjobs.jobs_live AS j
    WHERE j.status = 'running'
      AND (j.worker_id IN (SELECT id FROM dead)
           OR NOT EXISTS (SELECT 1 FROM pgjobs.workers AS w WHERE w.id = j.worker_id))
    FOR NO KEY UPDATE SKIP LOCKED
),
lost AS (
    -- The error entry of each orphan, by job id.
    SELECT j.id, jsonb_build_array(jsonb_build_object(
            'attempt', j.attempts,
            'at', now(),
            'worker_id', j.worker_id,
            'started_at', j.started_at,
            'type', 'pgjobs.WorkerLost',
            'message', CASE
                WHEN j.worker_id IN (SELECT id FROM dead WHERE by_lock)
                THEN format('worker %s lost its connection to PostgreSQL while running this'
                            ' job (its liveness lock was released)', j.worker_id)
                ELSE format('worker %s stopped heartbeating while running this job', j.worker_id)
            END,
            'traceback', NULL)) AS entry
    FROM pgjobs.jobs_live AS j
    WHERE j.id = ANY (ARRAY(SELECT id FROM orphaned))
),
-- No attempts left: the job fails, and moves to the history (as completion
-- moves a finished job). Otherwise it goes back to the queue, in place.
exhausted AS (
    DELETE FROM pgjobs.jobs_live AS j
    WHERE j.id = ANY (ARRAY(SELECT id FROM orphaned WHERE exhausted))
    RETURNING j.*
),
failed AS (
    INSERT INTO pgjobs.job_history (id, queue, task, args, priority, status, run_at, attempts,
                                    max_attempts, fingerprint, worker_id, started_at, created_at,
                                    finished_at, errors, result, meta, cancel_requested_at,
                                    cancelled_by, snoozes, progress, checkpoint, timeout, key)
    SELECT e.id, e.queue, e.task, e.args, e.priority,
           CASE WHEN e.cancel_requested_at IS NULL THEN 'failed' ELSE 'cancelled' END
               ::pgjobs.job_status,
           now(), e.attempts, e.max_attempts, e.fingerprint, e.worker_id, e.started_at,
           e.created_at, now(), e.errors || l.entry, e.result, e.meta, e.cancel_requested_at,
           e.cancelled_by, e.snoozes, e.progress, e.checkpoint, e.timeout, e.key
    FROM exhausted AS e JOIN lost AS l ON l.id = e.id
    RETURNING id, queue, status
),
requeued AS (
    UPDATE pgjobs.jobs_live AS j
    SET status = 'queued',
        run_at = now(),
        errors = j.errors || l.entry,
        worker_id = NULL
    FROM lost AS l
    WHERE j.id = ANY (ARRAY(SELECT id FROM orphaned WHERE NOT exhausted))
      AND l.id = j.id
    RETURNING j.id, j.queue, j.status, j.task, j.attempts, j.max_attempts, j.created_at,
              l.entry -> 0 AS error
),
rescued AS (
    SELECT * FROM failed
    UNION ALL
    SELECT id, queue, status FROM requeued
),
retried AS (
    -- A lost attempt that goes back to the queue is the `failed` event of
    -- webhooks, as in complete.sql (and only with an active webhook); the
    -- jobs that fail or are cancelled here fire theirs through the trigger
    -- on pgjobs.job_history.
    SELECT pgjobs.webhooks_fire(jsonb_agg(jsonb_build_object(
               'id', r.id, 'task', r.task, 'queue', r.queue, 'status', 'queued',
               'attempts', r.attempts, 'max_attempts', r.max_attempts,
               'created_at', r.created_at, 'error', r.error))) AS n
    FROM requeued AS r
    WHERE EXISTS (SELECT 1 FROM pgjobs.webhooks WHERE active)
)
SELECT
    (SELECT count(*) FROM dead) AS dead_workers,
    (SELECT count(*) FROM dead WHERE by_lock) AS lost_locks,
    count(*) FILTER (WHERE status = 'queued') AS requeued,
    count(*) FILTER (WHERE status = 'failed') AS failed,
    count(*) FILTER (WHERE status = 'cancelled') AS cancelled,
    (SELECT coalesce(array_agg(id ORDER BY id), '{}') FROM lockless
      WHERE id NOT IN (SELECT id FROM dead)) AS lockless,
    now() AS at,
    (SELECT count(*) FROM (
        SELECT pgjobs.wake(queue) FROM (SELECT DISTINCT queue FROM rescued WHERE status = 'queued') AS q
    ) AS w) AS woken,
    (SELECT count(*) FROM (
        SELECT pgjobs.notify_done(array_agg(id)) FROM rescued WHERE status <> 'queued'
    ) AS d) AS told,
    (SELECT coalesce(n, 0) FROM retried) AS webhooks,
    -- Workflows (migration 0014): the dependents of the jobs that failed or
    -- were cancelled here are cancelled, recursively, in this transaction
    -- (those that run anyway, migration 0016, are released instead).
    coalesce((SELECT pgjobs.resolve_dependents(NULL, array_agg(id)) FROM failed
              HAVING count(*) > 0), 0) AS dependents_cancelled,
    -- Circuit breakers (migration 0018): a lost attempt is a failed one
    -- (not one that was asked to stop), as complete.sql counts them.
    coalesce((SELECT pgjobs.breakers_record(array_agg(r.task), array_agg(r.id),
                                            array_agg(r.queue), array_agg(false))
              FROM (SELECT e.task, e.id, e.queue FROM exhausted AS e
                    WHERE e.cancel_requested_at IS NULL
                    UNION ALL
                    SELECT q.task, q.id, q.queue FROM requeued AS q) AS r
              WHERE EXISTS (SELECT 1 FROM pgjobs.task_breakers)
              HAVING count(*) > 0), 0) AS breakers
FROM rescued
