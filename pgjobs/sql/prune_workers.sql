-- Remove the rows of workers gone for more than :stale_after seconds that
-- hold no running job. (The rescuer removes the others together with
-- rescuing their jobs.)
WITH gone AS (
    DELETE FROM pgjobs.workers AS w
    WHERE w.last_seen_at < now() - make_interval(secs => CAST(:stale_after AS double precision))
      AND NOT EXISTS (
          SELECT 1 FROM pgjobs.jobs_live AS j WHERE j.status = 'running' AND j.worker_id = w.id
      )
    RETURNING 1
)
SELECT count(*) AS removed FROM gone
