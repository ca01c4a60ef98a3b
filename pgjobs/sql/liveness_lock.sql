-- Hold this worker's liveness lock on the listener's session, and mark the
-- worker's row as one that holds it (LIVENESS_LOCK_CLASSID in
-- pgjobs/_names.py; the rescuer, pgjobs/sql/rescue.sql, reads both).
--
-- The listener runs this first thing after every (re)connect, and again at
-- every health check: the lock is taken only if this session does not hold
-- it already (session locks stack, and each take would need an unlock of
-- its own), and the row is written only when the mark is missing, so a
-- worker that had to register again gets its mark back.
--
-- pg_try_: a lock still held by this worker's previous listener backend
-- (the server has not yet noticed that connection's end) must not block the
-- listener; it tries again a moment later, and meanwhile the old backend's
-- lock keeps the worker alive in the rescuer's eyes.
--
-- The mark is written only once the lock is held, in the same statement: a
-- worker is never marked without its lock but for the moments its listener
-- reconnects, which the rescuer's grace covers. A poll-only worker is never
-- marked: the heartbeat alone tells whether it lives.
WITH mine AS (
    SELECT EXISTS (
        SELECT 1
        FROM pg_locks
        WHERE locktype = 'advisory'
          AND pid = pg_backend_pid()
          AND granted
          AND objsubid = 2
          AND CAST(classid AS bigint) = CAST(:classid AS bigint)
          AND CAST(objid AS bigint) = (CAST(:worker_id AS bigint) & 4294967295)
    ) AS held
),
taken AS (
    SELECT CASE WHEN mine.held THEN true
                ELSE pg_try_advisory_lock(CAST(:classid AS integer), CAST(:objid AS integer))
           END AS held
    FROM mine
),
marked AS (
    UPDATE pgjobs.workers
    SET meta = meta || CAST('{"liveness_lock": true}' AS jsonb)
    WHERE id = CAST(:worker_id AS bigint)
      AND NOT (meta ? 'liveness_lock')
      AND (SELECT held FROM taken)
    RETURNING id
)
SELECT (SELECT held FROM taken) AS held, (SELECT count(*) FROM marked) AS marked
