-- How big pgjobs.jobs is, without counting it: the relation's size on disk and
-- the planner's row estimate (-1 before the first VACUUM or ANALYZE).
SELECT pg_relation_size(c.oid) AS bytes,
       CAST(c.reltuples AS bigint) AS estimated_rows
FROM pg_class AS c
WHERE c.oid = CAST('pgjobs.jobs' AS regclass)
