-- Who holds the leader's session advisory lock (pgjobs/_names.py): a bigint
-- key shows in pg_locks split into classid (high 32 bits) and objid (low 32
-- bits), with objsubid 1. The leader connection names itself
-- "pgjobs-leader pid=N" in application_name; a role without
-- pg_read_all_stats may see NULL there for other users' sessions. Advisory
-- locks are per database, and pg_locks lists the whole cluster's.
SELECT l.pid AS backend_pid, a.application_name
FROM pg_locks AS l
LEFT JOIN pg_stat_activity AS a ON a.pid = l.pid
WHERE l.locktype = 'advisory'
  AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
  AND l.granted
  AND l.objsubid = 1
  AND CAST(l.classid AS bigint) = CAST(:classid AS bigint)
  AND CAST(l.objid AS bigint) = CAST(:objid AS bigint)
LIMIT 1
