-- Delete the counts of finished jobs (pgjobs.finished_per_minute and
-- pgjobs.finished_per_hour, kept by a trigger on pgjobs.job_history) older
-- than :minute_days and :hour_days days. Only periods long past go, so no
-- completion is writing to them.
WITH minutes AS (
    DELETE FROM pgjobs.finished_per_minute
    WHERE minute < now() - make_interval(days => CAST(:minute_days AS integer))
    RETURNING 1
), hours AS (
    DELETE FROM pgjobs.finished_per_hour
    WHERE hour < now() - make_interval(days => CAST(:hour_days AS integer))
    RETURNING 1
)
SELECT (SELECT count(*) FROM minutes) AS minutes, (SELECT count(*) FROM hours) AS hours
