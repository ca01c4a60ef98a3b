-- Give back the jobs that the database says this worker runs but the worker
-- does not know about (:known is every job it runs or has an outcome for).
--
-- Such a job was claimed by a statement whose reply never arrived: the
-- connection dropped after the commit (a network cut, pg_terminate_backend,
-- a server crash after the WAL flush). The worker never ran it, and the
-- rescuer never will, because the worker is alive and heartbeating: without
-- this, the job would stay `running` for as long as the worker lives.
--
-- Only claims older than :min_age seconds are touched, so a claim whose reply
-- is still on its way is left alone. The attempt is not counted, as in
-- release.sql: the handler never ran. Waiting workers of those queues are woken.
WITH released AS (
    UPDATE pgjobs.jobs_live
    SET status = 'queued', worker_id = NULL, started_at = NULL,
        attempts = greatest(attempts - 1, 0), run_at = now()
    WHERE status = 'running'
      AND worker_id = CAST(:worker_id AS bigint)
      AND id <> ALL (CAST(:known AS bigint[]))
      AND started_at < now() - make_interval(secs => CAST(:min_age AS double precision))
    RETURNING id, queue
)
SELECT coalesce(array_agg(id ORDER BY id), '{}') AS ids,
       (SELECT count(*) FROM (
            SELECT pgjobs.wake(queue) FROM (SELECT DISTINCT queue FROM released) AS q
       ) AS w) AS woken
FROM released
