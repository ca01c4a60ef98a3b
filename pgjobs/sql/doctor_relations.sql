-- `pgjobs doctor`: the pgjobs tables and their indexes, with what the
-- statistics collector counts (live and dead rows, last autovacuum) and the
-- inputs of a bloat estimate: the size now, and the bytes a row takes by
-- pg_stats' average column widths (NULL until the table is analyzed).
-- An index's entries are its table's live rows, or for a partial index its
-- reltuples (refreshed by VACUUM and ANALYZE).
WITH rel AS (
    SELECT c.oid, c.relname, c.relkind, c.reltuples, t.oid AS table_oid, t.relname AS table_name,
           s.n_live_tup, s.n_dead_tup, s.last_autovacuum, s.last_vacuum,
           i.indpred IS NOT NULL AS partial, i.indkey
    FROM pg_class AS c
    JOIN pg_namespace AS n ON n.oid = c.relnamespace
    LEFT JOIN pg_index AS i ON i.indexrelid = c.oid
    LEFT JOIN pg_class AS t ON t.oid = coalesce(i.indrelid, c.oid)
    LEFT JOIN pg_stat_user_tables AS s ON s.relid = t.oid
    WHERE n.nspname = 'pgjobs' AND c.relkind IN ('r', 'i')
      AND t.relname NOT IN ('alembic_version', 'schema_window')
      -- The history's partitions are written once and dropped whole: no
      -- dead rows or bloat to speak of (doctor_history.sql sums them up).
      AND NOT t.relispartition
)
SELECT rel.relname AS name,
       rel.relkind = 'i' AS is_index,
       rel.table_name,
       pg_relation_size(rel.oid) AS bytes,
       current_setting('block_size')::bigint AS block_size,
       coalesce(rel.n_live_tup, 0) AS live_rows,
       coalesce(rel.n_dead_tup, 0) AS dead_rows,
       CASE WHEN rel.relkind = 'i' AND rel.partial THEN greatest(rel.reltuples, 0)::bigint
            ELSE coalesce(rel.n_live_tup, 0) END AS entries,
       CASE WHEN rel.relkind = 'r' THEN
                (SELECT sum(st.avg_width) FROM pg_stats AS st
                 WHERE st.schemaname = 'pgjobs' AND st.tablename = rel.relname)
            ELSE
                -- An expression column (hashtext(queue)) counts 8 bytes.
                (SELECT sum(coalesce(st.avg_width, 8))
                 FROM unnest(rel.indkey) AS k(attnum)
                 LEFT JOIN pg_attribute AS a
                        ON a.attrelid = rel.table_oid AND a.attnum = k.attnum
                 LEFT JOIN pg_stats AS st
                        ON st.schemaname = 'pgjobs' AND st.tablename = rel.table_name
                       AND st.attname = a.attname)
       END AS row_width,
       greatest(rel.last_autovacuum, rel.last_vacuum) AS last_vacuum
FROM rel
ORDER BY rel.table_name, rel.relkind DESC, rel.relname
