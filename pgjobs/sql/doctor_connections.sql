-- `pgjobs doctor`: client connections of the whole server by application
-- name, the " pid=N" tag that pgjobs adds cut off.
SELECT coalesce(regexp_replace(a.application_name, ' pid=[0-9]+$', ''), '') AS application,
       count(*) AS connections
FROM pg_stat_activity AS a
WHERE a.backend_type = 'client backend'
GROUP BY 1
ORDER BY 2 DESC, 1
