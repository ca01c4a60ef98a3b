-- The history partitions the benchmark's 30 days of finished jobs need, a day each.
SELECT count(pgjobs.history_partition_for(s, t)) AS partitions
FROM unnest(CAST(ARRAY['succeeded', 'failed', 'cancelled'] AS pgjobs.job_status[])) AS s,
     generate_series(now() - interval '31 days', now(), interval '1 day') AS t
