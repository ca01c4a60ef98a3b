-- Whether this database has the cron schedules table (revision 0002 and later).
SELECT to_regclass('pgjobs.schedules') IS NOT NULL AS present
