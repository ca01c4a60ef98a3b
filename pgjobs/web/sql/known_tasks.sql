-- Task names for the filter menu: those of the App plus those the planner's
-- statistics know as common, with no scan of the jobs table.
SELECT unnest(CAST(CAST(s.most_common_vals AS text) AS text[])) AS task
FROM pg_stats AS s
WHERE s.schemaname = 'pgjobs' AND s.attname = 'task'
  AND (s.tablename = 'jobs_live' OR s.tablename LIKE 'job\_history\_%')
