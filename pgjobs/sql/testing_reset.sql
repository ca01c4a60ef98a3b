-- Empty every pgjobs table but Alembic's, so that a test starts with no jobs,
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
        WHERE schemaname = 'pgjobs' AND tablename <> 'alembic_version'
    );
END
$$
