-- Whether the database has the table in which Alembic records the pgjobs
-- schema's revision (schema_revision.sql reads it). Asked first, so that a
-- database without a schema is an answer, not an error that would end the
-- caller's transaction.
SELECT to_regclass('pgjobs.alembic_version') IS NOT NULL AS versioned
