-- `pgjobs doctor`: what holds back the xmin horizon of this database, so
-- that VACUUM cannot remove the dead rows of pgjobs.jobs: the oldest
-- transactions of its sessions (an assigned xid holds it as a snapshot
-- does), prepared transactions, and replication slots (a slot's xmin holds
-- back every database of the cluster). Oldest first, by xid age.
SELECT 'session' AS kind,
       a.pid,
       a.application_name AS application,
       CAST(extract(epoch FROM now() - a.xact_start) AS double precision) AS seconds,
       age(coalesce(a.backend_xmin, a.backend_xid)) AS xid_age,
       a.state,
       a.query
FROM pg_stat_activity AS a
WHERE a.datname = current_database()
  AND a.pid <> pg_backend_pid()
  AND coalesce(a.backend_xmin, a.backend_xid) IS NOT NULL
UNION ALL
SELECT 'prepared transaction', NULL, p.gid,
       CAST(extract(epoch FROM now() - p.prepared) AS double precision),
       age(p.transaction), NULL, NULL
FROM pg_prepared_xacts AS p
WHERE p.database = current_database()
UNION ALL
SELECT 'replication slot', s.active_pid, s.slot_name, NULL,
       age(s.xmin), CASE WHEN s.active THEN 'active' ELSE 'inactive' END, NULL
FROM pg_replication_slots AS s
WHERE s.xmin IS NOT NULL
ORDER BY xid_age DESC NULLS LAST
