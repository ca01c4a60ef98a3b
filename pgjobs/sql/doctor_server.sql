-- `pgjobs doctor`: server-wide values: the NOTIFY queue's fill, the
-- connection limit, the port the server listens on, whether autovacuum runs,
-- and pgjobs.jobs_live' storage parameters.
SELECT pg_notification_queue_usage() AS notify_usage,
       current_setting('max_connections')::integer AS max_connections,
       current_setting('superuser_reserved_connections')::integer AS reserved_connections,
       current_setting('port')::integer AS server_port,
       current_setting('autovacuum') = 'on' AS autovacuum,
       (SELECT c.reloptions FROM pg_class AS c
        WHERE c.oid = to_regclass('pgjobs.jobs_live')) AS jobs_reloptions
