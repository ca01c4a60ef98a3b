-- Four live workers for the benchmark's workers page.
INSERT INTO pgjobs.workers (id, host, pid, queues, concurrency)
SELECT n, 'bench-host-' || n, 10000 + n, ARRAY['q0', 'q1', 'q2', 'q3', 'q4'], 10
FROM generate_series(1, 4) AS n
ON CONFLICT (id) DO UPDATE SET last_seen_at = now()
