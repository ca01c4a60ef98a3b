-- The Alembic revision of the pgjobs schema: NULL without a schema, or before
-- the first migration has finished. Only after schema_versioned.sql has found
-- the table: on a database without it, this statement fails.
SELECT version_num FROM pgjobs.alembic_version
