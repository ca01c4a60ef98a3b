-- The dashboard's GET /metrics: the live and dead rows of each pgjobs table,
-- as the statistics collector counts them (no table is read). Dead rows that
-- keep growing mean vacuum cannot keep up, or something holds back the xmin
-- horizon (`pgjobs doctor` finds what).
-- The partitions of pgjobs.job_history count as that one table.
SELECT coalesce(CAST(r.relname AS text), CAST(s.relname AS text)) AS name,
       sum(s.n_live_tup) AS live_rows,
       sum(s.n_dead_tup) AS dead_rows
FROM pg_stat_user_tables AS s
LEFT JOIN pg_class AS r ON r.oid = pg_partition_root(s.relid) AND r.oid <> s.relid
WHERE s.schemaname = 'pgjobs' AND s.relname NOT IN ('alembic_version', 'schema_window')
GROUP BY 1
ORDER BY 1
