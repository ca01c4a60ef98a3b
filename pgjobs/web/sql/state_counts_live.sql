-- Exact counts of the live jobs by state, for the jobs list's tabs, optionally
-- of one queue and one task. pgjobs.jobs_live holds only live jobs (finished
-- ones move to the history), so this reads the backlog, not the history; the
-- derived states follow the pgjobs.job_states view: retrying is queued after
-- a failed attempt, scheduled is queued with a future run_at and never failed.
SELECT count(*) FILTER (WHERE status = 'queued') AS queued,
       count(*) FILTER (WHERE status = 'queued' AND attempts = 0 AND run_at > now()) AS scheduled,
       count(*) FILTER (WHERE status = 'queued' AND attempts > 0) AS retrying,
       count(*) FILTER (WHERE status = 'running') AS running,
       count(*) FILTER (WHERE status = 'blocked') AS blocked
FROM pgjobs.jobs_live
WHERE (CAST(:queue AS text) IS NULL OR queue = CAST(:queue AS text))
  AND (CAST(:task AS text) IS NULL OR task = CAST(:task AS text))
