-- One job, for the Django backend's get_result (pgjobs/contrib/django): its
-- state, attempts, errors and result. Read only, through Django's connection,
-- whose drivers hand jsonb over as text (Django decodes JSON itself): the
-- JSON columns are asked for as text, and decoded by the backend.
SELECT id, queue, task, args::text AS args, status::text AS status, attempts,
       max_attempts, worker_id, started_at, created_at, finished_at,
       errors::text AS errors, result::text AS result, meta::text AS meta
FROM pgjobs.jobs
WHERE id = CAST(:id AS bigint)
