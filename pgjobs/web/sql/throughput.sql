-- Jobs finished per bar of :step seconds, the last :buckets bars up to now
-- by the database clock, one row per bar (zeros included), oldest first,
-- optionally of one queue and one task.
--
-- Read from pgjobs.finished_per_minute (migration 0019), which a trigger on
-- pgjobs.job_history keeps: one row per minute, queue, task and status, so
-- this reads as many rows at 2,000,000 jobs an hour as at 200, never the
-- history itself. The range is found through the primary key, which leads
-- with the minute.
WITH bounds AS (
    SELECT date_bin(make_interval(secs => CAST(:step AS integer)), now(),
                    TIMESTAMPTZ '2000-01-01 00:00:00+00') AS last
), buckets AS (
    SELECT generate_series(
               b.last - make_interval(secs => CAST(:step AS integer) * (CAST(:buckets AS integer) - 1)),
               b.last,
               make_interval(secs => CAST(:step AS integer))
           ) AS at
    FROM bounds AS b
), counted AS (
    SELECT date_bin(make_interval(secs => CAST(:step AS integer)), c.minute,
                    TIMESTAMPTZ '2000-01-01 00:00:00+00') AS at,
           sum(c.jobs) FILTER (WHERE c.status = 'succeeded') AS succeeded,
           sum(c.jobs) FILTER (WHERE c.status = 'failed') AS failed,
           sum(c.jobs) FILTER (WHERE c.status = 'cancelled') AS cancelled
    FROM pgjobs.finished_per_minute AS c
    WHERE c.minute >= (SELECT b.last - make_interval(
                                  secs => CAST(:step AS integer) * (CAST(:buckets AS integer) - 1))
                       FROM bounds AS b)
      AND (CAST(:queue AS text) IS NULL OR c.queue = CAST(:queue AS text))
      AND (CAST(:task AS text) IS NULL OR c.task = CAST(:task AS text))
    GROUP BY 1
)
SELECT b.at,
       coalesce(c.succeeded, 0) AS succeeded,
       coalesce(c.failed, 0) AS failed,
       coalesce(c.cancelled, 0) AS cancelled
FROM buckets AS b
LEFT JOIN counted AS c ON c.at = b.at
ORDER BY b.at
