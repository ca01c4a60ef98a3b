-- `pgjobs doctor`: sessions of this database idle inside a transaction,
-- longest idle first.
SELECT a.pid,
       a.application_name AS application,
       CAST(extract(epoch FROM now() - a.state_change) AS double precision) AS seconds,
       a.query
FROM pg_stat_activity AS a
WHERE a.datname = current_database()
  AND a.pid <> pg_backend_pid()
  AND a.state IN ('idle in transaction', 'idle in transaction (aborted)')
ORDER BY a.state_change
