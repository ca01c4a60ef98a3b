-- The queued jobs, oldest first: pgjobs.testing.assert_enqueued matches them
-- against what a test expects, and lists them when none fit.
SELECT id, task, queue, priority, args, run_at, attempts
FROM pgjobs.jobs_live
WHERE status = 'queued'
ORDER BY id
