-- Jobs finished per minute over the last :minutes minutes by the database
-- clock, one row per minute (zeros included), oldest first. The status
-- condition repeats the predicate of jobs_finished_idx on purpose, so that the
-- planner reads the time range from that index instead of the table.
WITH minutes AS (
    SELECT generate_series(
               date_trunc('minute', now()) - make_interval(mins => CAST(:minutes AS integer) - 1),
               date_trunc('minute', now()),
               interval '1 minute'
           ) AS minute
), finished AS (
    SELECT date_trunc('minute', finished_at) AS minute, status
    FROM pgjobs.job_history
    WHERE status IN ('succeeded', 'failed', 'cancelled')
      AND finished_at >= date_trunc('minute', now())
                         - make_interval(mins => CAST(:minutes AS integer) - 1)
)
SELECT m.minute,
       count(f.minute) FILTER (WHERE f.status = 'succeeded') AS succeeded,
       count(f.minute) FILTER (WHERE f.status = 'failed') AS failed
FROM minutes AS m
LEFT JOIN finished AS f ON f.minute = m.minute
GROUP BY m.minute
ORDER BY m.minute
