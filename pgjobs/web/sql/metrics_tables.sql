-- The dashboard's GET /metrics: the live and dead rows of each pgjobs table,
-- as the statistics collector counts them (no table is read). Dead rows that
-- keep growing mean vacuum cannot keep up, or something holds back the xmin
-- horizon (`pgjobs doctor` finds what).
SELECT s.relname AS name,
       s.n_live_tup AS live_rows,
       s.n_dead_tup AS dead_rows
FROM pg_stat_user_tables AS s
WHERE s.schemaname = 'pgjobs' AND s.relname <> 'alembic_version'
ORDER BY s.relname
