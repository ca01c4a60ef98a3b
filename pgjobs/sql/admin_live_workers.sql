-- Workers whose heartbeat is fresher than stale_after seconds.
SELECT count(*) AS live_workers
FROM pgjobs.workers
WHERE last_seen_at > now() - make_interval(secs => CAST(:stale_after AS double precision))
