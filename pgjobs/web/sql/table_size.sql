-- How big the jobs are, without counting them: the size on disk of
-- pgjobs.jobs_live and of every partition of pgjobs.job_history, and the
-- planner's row estimates summed (a table never vacuumed or analyzed counts
-- as 0).
SELECT coalesce(sum(pg_relation_size(c.oid)), 0) AS bytes,
       CAST(coalesce(sum(greatest(c.reltuples, 0)), 0) AS bigint) AS estimated_rows
FROM pg_class AS c
WHERE c.oid = CAST('pgjobs.jobs_live' AS regclass)
   OR c.oid IN (SELECT relid FROM pg_partition_tree(CAST('pgjobs.job_history' AS regclass))
                WHERE isleaf)
