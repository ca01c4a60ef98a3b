-- Empty every pgjobs table but the schema's own records (Alembic's version,
-- and each revision's compatible window), so that a test starts with no jobs,
-- workers, queues or schedules left by the one before: the pgjobs_dsn fixture
-- of pgjobs' pytest plugin. The tables are read from the catalog, so one that
-- a later migration adds is emptied too. TRUNCATE waits for every other
-- transaction on those tables: a lock timeout turns a connection left open in
-- a transaction (or a worker left running) into an error instead of a hang.
DO $$
BEGIN
    PERFORM set_config('lock_timeout', '10s', true);
    EXECUTE (
        SELECT 'TRUNCATE ' || string_agg(format('%I.%I', schemaname, tablename), ', ')
            || ' RESTART IDENTITY'
        FROM pg_tables
        WHERE schemaname = 'pgjobs' AND tablename NOT IN ('alembic_version', 'schema_window')
    );
END
$$
