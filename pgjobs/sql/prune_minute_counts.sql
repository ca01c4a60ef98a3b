-- Delete the per-minute counts of finished jobs (pgjobs.finished_per_minute,
-- kept by a trigger on pgjobs.job_history) older than :keep_days days. Only
-- whole minutes long past go, so no completion is writing to them.
WITH gone AS (
    DELETE FROM pgjobs.finished_per_minute
    WHERE minute < now() - make_interval(days => CAST(:keep_days AS integer))
    RETURNING 1
)
SELECT count(*) AS removed FROM gone
