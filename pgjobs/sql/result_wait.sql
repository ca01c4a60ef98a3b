-- Register this session as waiting for job :id: the statements that finish
-- it then notify 'pgjobs_done' with its id (see complete.sql). Rows of
-- sessions that are gone (a client killed while it waited) are removed on
-- the way; the table holds a row per waiting client, so this is cheap.
WITH stale AS (
    DELETE FROM pgjobs.result_waiters AS w
    WHERE NOT EXISTS (SELECT 1 FROM pg_stat_activity AS a WHERE a.pid = w.pid)
)
INSERT INTO pgjobs.result_waiters (job_id) VALUES (CAST(:id AS bigint))
ON CONFLICT (job_id, pid) DO NOTHING
