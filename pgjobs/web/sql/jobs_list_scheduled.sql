-- Jobs in the derived state scheduled: queued with a future run_at, never failed (a job
-- waiting out a retry's backoff is retrying: the rule of the pgjobs.job_states
-- view, migration 0008). The same page as
-- pgjobs/sql/admin_list_jobs.sql, but the state is spelled out on the stored
-- columns with a constant status = 'queued', so that even a generic plan can
-- read the small partial index jobs_fetch_idx instead of walking every row of
-- the primary key (the job_states view's CASE hides that from the planner).
WITH page AS (
    SELECT *, 'scheduled' AS state
    FROM pgjobs.jobs_live
    WHERE status = 'queued'
      AND run_at > now() AND attempts = 0
      AND (CAST(:queue AS text) IS NULL OR queue = CAST(:queue AS text))
      -- the fetch index leads with the queue's hash (migration 0006)
      AND (CAST(:queue AS text) IS NULL OR hashtext(queue) = hashtext(CAST(:queue AS text)))
      AND (CAST(:task AS text) IS NULL OR task = CAST(:task AS text))
      AND (CAST(:before_id AS bigint) IS NULL OR id < CAST(:before_id AS bigint))
    ORDER BY id DESC
    LIMIT CAST(:limit AS integer)
)
\include job_summaries
