-- The dead rows of pgjobs.jobs_live as the statistics collector counts them
-- (no table is read; the counts trail the writes by a second or so).
SELECT coalesce(max(n_dead_tup), 0) AS dead_rows
FROM pg_stat_user_tables
WHERE relid = CAST('pgjobs.jobs_live' AS regclass)
