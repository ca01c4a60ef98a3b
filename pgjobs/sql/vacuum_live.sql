-- The vacuumer's VACUUM of the live table: skipped at once if autovacuum or
-- another VACUUM holds it. It cannot run inside a transaction block.
VACUUM (SKIP_LOCKED) pgjobs.jobs_live
