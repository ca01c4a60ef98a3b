-- Whether the database records the compatible window of its revisions
-- (pgjobs.schema_window, from revision 0015 on; schema_window.sql reads it).
-- Asked first, as schema_versioned.sql is, so that an older database is an
-- answer, not an error that would end the caller's transaction.
SELECT to_regclass('pgjobs.schema_window') IS NOT NULL AS windowed
