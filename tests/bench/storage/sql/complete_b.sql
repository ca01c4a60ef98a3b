-- Design B: record many outcomes in one statement. A finished outcome moves
-- the row out of jobs_live into job_history (DELETE ... RETURNING feeding an
-- INSERT); a retry (status 'queued') stays in jobs_live (UPDATE). Same fence
-- and the same PK-driving `j.id = ANY (:ids)` as complete.sql.
WITH u AS (
    SELECT *
    FROM unnest(
        CAST(:ids AS bigint[]),
        CAST(:attempts AS integer[]),
        CAST(:statuses AS pgjobs.job_status[]),
        CAST(:delays AS double precision[]),
        CAST(:errors AS jsonb[]),
        CAST(:results AS jsonb[])
    ) AS u(id, attempt, status, delay, error, result)
),
finished AS (
    DELETE FROM pgjobs.jobs_live AS j
    USING u
    WHERE j.id = u.id
      AND j.id = ANY (CAST(:ids AS bigint[]))
      AND u.status <> 'queued'
      AND (j.status = 'running'
           AND j.worker_id = CAST(:worker_id AS bigint)
           AND j.attempts = u.attempt) IS TRUE
    RETURNING j.*, u.status AS new_status, u.error AS new_error, u.result AS new_result
),
archived AS (
    INSERT INTO pgjobs.job_history (id, queue, task, args, priority, status, run_at, attempts,
                                    max_attempts, fingerprint, worker_id, started_at, created_at,
                                    finished_at, errors, result, meta)
    SELECT id, queue, task, args, priority, new_status, run_at, attempts,
           max_attempts, fingerprint, NULL, started_at, created_at,
           now(),
           CASE WHEN new_error IS NULL THEN errors
                ELSE errors || jsonb_build_array(new_error || jsonb_build_object('at', now())) END,
           new_result, meta
    FROM finished
    RETURNING id
),
requeued AS (
    UPDATE pgjobs.jobs_live AS j
    SET status = 'queued',
        run_at = now() + make_interval(secs => u.delay),
        finished_at = NULL,
        worker_id = NULL,
        errors = CASE WHEN u.error IS NULL THEN j.errors
                      ELSE j.errors || jsonb_build_array(u.error || jsonb_build_object('at', now())) END,
        result = u.result
    FROM u
    WHERE j.id = u.id
      AND j.id = ANY (CAST(:ids AS bigint[]))
      AND u.status = 'queued'
      AND (j.status = 'running'
           AND j.worker_id = CAST(:worker_id AS bigint)
           AND j.attempts = u.attempt) IS TRUE
    RETURNING j.id
)
SELECT id FROM archived
UNION ALL
SELECT id FROM requeued
