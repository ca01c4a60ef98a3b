-- The Alembic revision of the pgjobs schema, or no row without one.
SELECT version_num FROM pgjobs.alembic_version
