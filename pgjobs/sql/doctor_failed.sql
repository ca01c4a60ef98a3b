-- `pgjobs doctor`: jobs that failed in the last hour, in the hour before,
-- and in the last day (those the pruner has not yet deleted).
SELECT count(*) FILTER (WHERE finished_at > now() - interval '1 hour') AS last_hour,
       count(*) FILTER (WHERE finished_at <= now() - interval '1 hour'
                          AND finished_at > now() - interval '2 hours') AS hour_before,
       count(*) AS last_day
FROM pgjobs.jobs
WHERE status = 'failed' AND finished_at > now() - interval '1 day'
