-- Every queue worth showing, found without scanning the jobs table: queues
-- with settings, queues live workers serve, queues of schedules, and the
-- queues the planner's statistics know as common in pgjobs.jobs (that is how
-- a queue with only finished jobs shows up on a large table). Active queues
-- come from queue_active.sql.
SELECT name AS queue FROM pgjobs.queues
UNION
SELECT unnest(queues) FROM pgjobs.workers
UNION
SELECT unnest(CAST(CAST(s.most_common_vals AS text) AS text[]))
FROM pg_stats AS s
WHERE s.schemaname = 'pgjobs' AND s.attname = 'queue'
  AND (s.tablename = 'jobs_live' OR s.tablename LIKE 'job\_history\_%')
