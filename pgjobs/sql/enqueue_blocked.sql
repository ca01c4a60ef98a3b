-- Enqueue one job that waits for others (options(depends_on=[...])), in the
-- caller's transaction; returns its id.
--
-- pgjobs.pending_parents (migrations 0014 and 0016) runs first: it refuses
-- an id that is no job, or one that failed or was cancelled (unless named in
-- :always, pgjobs.after(id, always=True), for which any end will do), and
-- returns the parents that have not ended yet, each locked until this
-- transaction ends, so that a parent finishing meanwhile sees the rows
-- written here. Each edge says whether it is an `always` one. The job is
-- `blocked` with a row in pgjobs.job_dependencies per such parent, or
-- `queued` (and its queue's waiting workers woken, as enqueue.sql does) when
-- every parent has succeeded already. A fingerprint is refused by the
-- client: a blocked job would not hold it, and could not take it when
-- queued.
WITH parents AS MATERIALIZED (
    SELECT pgjobs.pending_parents(CAST(:depends_on AS bigint[]), CAST(:always AS bigint[]))
           AS pending
),
job AS (
    INSERT INTO pgjobs.jobs_live (task, args, queue, priority, status, run_at, max_attempts, meta,
                                  timeout, key)
    SELECT
        CAST(:task AS text),
        CAST(:args AS jsonb),
        CAST(:queue AS text),
        CAST(:priority AS integer),
        CAST(CASE WHEN cardinality(p.pending) > 0 THEN 'blocked' ELSE 'queued' END
             AS pgjobs.job_status),
        coalesce(
            CAST(:run_at AS timestamptz),
            now() + make_interval(secs => coalesce(CAST(:delay AS double precision), 0))
        ),
        CAST(:max_attempts AS integer),
        coalesce(CAST(:meta AS jsonb), '{}'::jsonb),
        CAST(:timeout AS double precision),
        CAST(:key AS text)
    FROM parents AS p
    RETURNING id, queue, run_at, status
),
edges AS (
    INSERT INTO pgjobs.job_dependencies (parent_id, job_id, always)
    SELECT parent, job.id, parent = ANY (CAST(:always AS bigint[]))
    FROM job, parents AS p, unnest(p.pending) AS parent
)
SELECT job.id
FROM job
LEFT JOIN LATERAL (
    SELECT pgjobs.wake(job.queue)
    WHERE job.status = 'queued' AND job.run_at <= now()
) AS woken ON true
