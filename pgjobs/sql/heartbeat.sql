-- Prove this worker is alive. No row back means the rescuer declared it dead.
UPDATE pgjobs.workers SET last_seen_at = now() WHERE id = CAST(:worker_id AS bigint) RETURNING id
