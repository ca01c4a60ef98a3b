-- The channel on which finished jobs that a client waits for are announced
-- (payload: the job's id); see result_wait.sql.
LISTEN pgjobs_done
