-- This session no longer waits for job :id (see result_wait.sql).
DELETE FROM pgjobs.result_waiters WHERE job_id = CAST(:id AS bigint) AND pid = pg_backend_pid()
