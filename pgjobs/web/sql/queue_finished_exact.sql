-- Exact counts of finished jobs per queue. This reads the whole table, so the
-- dashboard runs it only while the table is small (see _queries.py) and uses
-- planner estimates beyond that.
SELECT queue,
       count(*) FILTER (WHERE status = 'succeeded') AS succeeded,
       count(*) FILTER (WHERE status = 'failed') AS failed,
       count(*) FILTER (WHERE status = 'cancelled') AS cancelled
FROM pgjobs.job_history
WHERE status IN ('succeeded', 'failed', 'cancelled')
GROUP BY queue
