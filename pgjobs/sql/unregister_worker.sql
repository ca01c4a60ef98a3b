-- A worker leaves after a clean shutdown.
DELETE FROM pgjobs.workers WHERE id = CAST(:worker_id AS bigint)
