-- The Alembic revision of the pgjobs schema, and the oldest code revision
-- that its migration declared still works against it (NULL: a revision that
-- declared none, so only its own code is known to). Only after
-- schema_windowed.sql has found the table.
SELECT v.version_num, w.oldest_code
FROM pgjobs.alembic_version AS v
LEFT JOIN pgjobs.schema_window AS w ON w.revision = v.version_num
