-- Wait for any other migrator, then keep it out until this transaction ends
-- (migrations/env.py takes the same lock again; they stack).
SELECT pg_advisory_xact_lock(CAST(:key AS bigint))
