-- 1M succeeded jobs that finished two days ago (one daily partition in A/B),
-- then 10k queued jobs of queue 'default'. Vars: hist (where finished rows go),
-- live (where queued rows go).
\set ON_ERROR_STOP on
INSERT INTO :hist (id, queue, task, args, priority, status, run_at, attempts, max_attempts,
                   started_at, created_at, finished_at, errors, result)
SELECT i, 'default', 'bench.noop', jsonb_build_object('n', i), 2, 'succeeded',
       t - interval '2 s', 1, 3, t - interval '1 s', t - interval '3 s', t, '[]', NULL
FROM generate_series(1, 1000000) AS i,
     LATERAL (SELECT current_date - 2 + (i * interval '86 ms') AS t) AS x;
SELECT setval('pgjobs.jobs_id_seq', 1000000);
INSERT INTO :live (task, args, queue)
SELECT 'bench.noop', jsonb_build_object('n', i), 'default' FROM generate_series(1, 10000) AS i;
VACUUM ANALYZE;
