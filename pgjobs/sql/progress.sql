-- Write the latest progress of this worker's running jobs, one statement a
-- second at most (pgjobs/worker/_progress.py), fenced as a completion is.
-- The ids are looked up through the primary key (the array condition).
UPDATE pgjobs.jobs_live AS j
SET progress = u.report || jsonb_build_object('at', now())
FROM unnest(
    CAST(:ids AS bigint[]),
    CAST(:attempts AS integer[]),
    CAST(:reports AS jsonb[])
) AS u (id, attempt, report)
WHERE j.id = u.id
  AND j.id = ANY (CAST(:ids AS bigint[]))
  AND (j.status = 'running'
       AND j.worker_id = CAST(:worker_id AS bigint)
       AND j.attempts = u.attempt) IS TRUE
RETURNING j.id
