-- The chart benchmark's traffic: :rows jobs of 5 queues and 12 tasks, one in
-- 33 failed, finished over the hour before now, written straight into the
-- history as completions would: the batch of ids (:first, :last] per
-- statement, so the per-minute counts are upserted once a batch, as the
-- completers do (pgjobs.bench.dashboard --chart-hour only).
INSERT INTO pgjobs.job_history (queue, task, args, status, run_at, attempts, max_attempts,
                                started_at, created_at, finished_at)
SELECT 'q' || (i % 5), 'task_' || (i % 12), '{}',
       CAST(CASE WHEN i % 33 = 0 THEN 'failed' ELSE 'succeeded' END AS pgjobs.job_status),
       t, 1, 3, t, t, t
FROM generate_series(CAST(:first AS integer) + 1, CAST(:last AS integer)) AS i,
     LATERAL (SELECT now() - make_interval(
                  secs => 3600.0 * (CAST(:rows AS integer) - i) / CAST(:rows AS integer)) AS t) AS s
