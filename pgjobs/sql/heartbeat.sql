-- Prove this worker is alive. No row back means the rescuer declared it dead.
--
-- The reply also carries the ids of this worker's running jobs that were
-- asked to stop (pgjobs.cancel()): the fallback for a cancel notification
-- the worker's listener missed. Read through the partial index of running
-- jobs by worker; almost always an empty array.
UPDATE pgjobs.workers SET last_seen_at = now() WHERE id = CAST(:worker_id AS bigint)
RETURNING id,
          ARRAY(SELECT j.id FROM pgjobs.jobs_live AS j
                WHERE j.status = 'running'
                  AND j.worker_id = CAST(:worker_id AS bigint)
                  AND j.cancel_requested_at IS NOT NULL) AS cancels
