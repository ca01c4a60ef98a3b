-- The benchmark's jobs: :rows of them over 30 days, one in 33 failed with a
-- traceback, a backlog of 10,000 queued (half of them in the last 20,000 ids),
-- and a few running. Only pgjobs.bench.dashboard runs this, after making the
-- history partitions of those 30 days. Live and finished jobs go straight to
-- their tables (through the view, a trigger per row would be far slower).
WITH made AS MATERIALIZED (
    SELECT 'q' || (i % 5) AS queue,
           'task_' || (i % 12),
           jsonb_build_object('user_id', i, 'password', 'secret-' || i),
           i % 5,
           s.status,
           s.created + interval '1 second',
           CASE WHEN s.status = 'queued' THEN 0 ELSE 1 + (i % 3) END,
           3,
           CASE WHEN i % 10 = 0 THEN 'fp-' || i END,
           CASE WHEN s.status = 'running' THEN 1 END,
           CASE WHEN s.status <> 'queued' THEN s.created + interval '2 seconds' END,
           s.created,
           CASE WHEN s.status IN ('succeeded', 'failed', 'cancelled')
                THEN s.created + interval '3 seconds' END,
           CASE WHEN s.status = 'failed' THEN jsonb_build_array(jsonb_build_object(
                'attempt', 3, 'at', s.created, 'type', 'RuntimeError', 'message', 'boom ' || i,
                'traceback', repeat('  File "app.py", line 1, in handler' || chr(10), 20)))
                ELSE '[]'::jsonb END,
           CASE WHEN s.status = 'succeeded' THEN jsonb_build_object('ok', true) END
    FROM generate_series(1, CAST(:rows AS integer)) AS i,
    LATERAL (SELECT
        now() - make_interval(secs => (CAST(:rows AS integer) - i) * 2592000.0 / CAST(:rows AS integer)) AS created,
        CAST(CASE
            WHEN i > CAST(:rows AS integer) - 20000 AND i % 2 = 0 THEN 'queued'
            WHEN i > CAST(:rows AS integer) - 20 THEN 'running'
            WHEN i % 33 = 0 THEN 'failed'
            WHEN i % 97 = 0 THEN 'cancelled'
            ELSE 'succeeded' END AS pgjobs.job_status) AS status) AS s
), live AS (
    INSERT INTO pgjobs.jobs_live (queue, task, args, priority, status, run_at, attempts, max_attempts,
        fingerprint, worker_id, started_at, created_at, finished_at, errors, result)
    SELECT * FROM made WHERE status IN ('queued', 'running')
    RETURNING 1
), finished AS (
    INSERT INTO pgjobs.job_history (queue, task, args, priority, status, run_at, attempts, max_attempts,
        fingerprint, worker_id, started_at, created_at, finished_at, errors, result)
    SELECT * FROM made WHERE status NOT IN ('queued', 'running')
    RETURNING 1
)
SELECT (SELECT count(*) FROM live) + (SELECT count(*) FROM finished) AS jobs
