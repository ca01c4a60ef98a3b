-- Jobs in the derived state retrying: queued again after a failed attempt, whether
-- waiting out the backoff or due (the same rule as the pgjobs.job_states view,
-- migration 0008). The same page as
-- pgjobs/sql/admin_list_jobs.sql, but the state is spelled out on the stored
-- columns with a constant status = 'queued', so that the small partial index
-- jobs_fetch_idx can find them (the job_states view's CASE hides that from
-- the planner).
--
-- The MATERIALIZED fence makes PostgreSQL collect the queued rows first and
-- sort only those. Without it the planner trusts `attempts > 0`, which holds
-- for almost every finished job, expects many matches, and walks the primary
-- key backwards through all of history to find the newest. Among 300,000 jobs
-- with 186 retrying, a page filtered by queue and task took 53 ms, and takes
-- 1.6 ms with the fence; the slowest page is now the unfiltered one, at 2.9 ms
-- (1.0 ms before). The fence costs more when thousands of jobs are retrying
-- at once, as all of them are collected before the newest are picked.
WITH retrying AS MATERIALIZED (
    SELECT id, queue, task, status, priority, attempts, max_attempts, run_at, created_at, errors,
           progress, started_at
    FROM pgjobs.jobs_live
    WHERE status = 'queued'
      AND attempts > 0
      AND (CAST(:queue AS text) IS NULL OR queue = CAST(:queue AS text))
      -- the fetch index leads with the queue's hash (migration 0006)
      AND (CAST(:queue AS text) IS NULL OR hashtext(queue) = hashtext(CAST(:queue AS text)))
      AND (CAST(:task AS text) IS NULL OR task = CAST(:task AS text))
      AND (CAST(:before_id AS bigint) IS NULL OR id < CAST(:before_id AS bigint))
), page AS (
    SELECT *, 'retrying' AS state
    FROM retrying
    ORDER BY id DESC
    LIMIT CAST(:limit AS integer)
)
\include job_summaries
