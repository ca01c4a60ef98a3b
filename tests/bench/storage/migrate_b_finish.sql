-- Design B, after step 2: validate (SHARE UPDATE EXCLUSIVE: claims and
-- completions go on), drop the index that only served the old pruner, and
-- vacuum. The heap file keeps its size until rewritten (VACUUM FULL of 10k
-- rows takes its ACCESS EXCLUSIVE lock for a few ms; pg_repack avoids even that).
\timing on
ALTER TABLE pgjobs.jobs_live VALIDATE CONSTRAINT jobs_live_status;
DROP INDEX CONCURRENTLY pgjobs.jobs_finished_idx;
DROP INDEX CONCURRENTLY pgjobs.jobs_fingerprint_idx;
VACUUM (ANALYZE) pgjobs.jobs_live;
SELECT pg_size_pretty(pg_total_relation_size('pgjobs.jobs_live')) AS after_vacuum;
VACUUM (FULL, ANALYZE) pgjobs.jobs_live;
SELECT pg_size_pretty(pg_total_relation_size('pgjobs.jobs_live')) AS after_vacuum_full;
