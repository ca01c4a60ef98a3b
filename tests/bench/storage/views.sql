-- The three views, as migration 0001/0008 define them (they read pgjobs.jobs,
-- whatever pgjobs.jobs is: table, partitioned table or view).
CREATE VIEW pgjobs.job_states AS
SELECT j.*,
       CASE
           WHEN j.status = 'queued' AND j.attempts > 0 THEN 'retrying'
           WHEN j.status = 'queued' AND j.run_at > now() THEN 'scheduled'
           ELSE j.status::text
       END AS state
FROM pgjobs.jobs j;
CREATE VIEW pgjobs.queue_stats AS
SELECT queue,
       count(*) FILTER (WHERE status = 'queued' AND run_at <= now()) AS available,
       count(*) FILTER (WHERE status = 'queued' AND run_at > now())  AS scheduled,
       count(*) FILTER (WHERE status = 'running')                    AS running,
       count(*) FILTER (WHERE status = 'succeeded')                  AS succeeded,
       count(*) FILTER (WHERE status = 'failed')                     AS failed,
       count(*) FILTER (WHERE status = 'cancelled')                  AS cancelled,
       now() - min(run_at) FILTER (WHERE status = 'queued' AND run_at <= now()) AS oldest_available_age
FROM pgjobs.jobs
GROUP BY queue;
CREATE VIEW pgjobs.failed_jobs AS
SELECT id, queue, task, args, attempts, finished_at,
       errors -> -1 ->> 'type'    AS last_error_type,
       errors -> -1 ->> 'message' AS last_error_message,
       errors
FROM pgjobs.jobs
WHERE status = 'failed';
