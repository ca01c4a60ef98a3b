-- `pgjobs doctor`: the registered workers, how long each has been silent,
-- and whether its LISTEN connection ("pgjobs-listener pid=N") is a session
-- of this database.
SELECT w.id,
       w.host,
       w.pid,
       w.queues,
       w.awaiting_work,
       CAST(extract(epoch FROM now() - w.last_seen_at) AS double precision) AS silent_seconds,
       EXISTS (
           SELECT 1 FROM pg_stat_activity AS a
           WHERE a.datname = current_database()
             AND a.application_name = 'pgjobs-listener pid=' || w.pid
       ) AS listener_seen
FROM pgjobs.workers AS w
ORDER BY w.id
