-- The planner's estimate of how many jobs match, read from EXPLAIN: it costs
-- a plan, not a scan. Good to a few percent with fresh statistics; shown
-- with a "≈" in the dashboard.
EXPLAIN (FORMAT JSON)
SELECT 1
FROM pgjobs.jobs
WHERE (CAST(:status AS pgjobs.job_status) IS NULL OR status = CAST(:status AS pgjobs.job_status))
  AND (CAST(:queue AS text) IS NULL OR queue = CAST(:queue AS text))
  AND (CAST(:task AS text) IS NULL OR task = CAST(:task AS text))
