-- The history partitions to drop: every one whose whole range of finished_at
-- lies past its status's retention, and any left half-detached by a detach
-- that was interrupted (those are finished first). Statuses missing from
-- :statuses keep their history for ever. Oldest first.
--
-- A partition goes only once its newest possible row is past the
-- retention, so a finished job is kept for at least its retention, and at
-- most its retention plus one partition's interval.
SELECT p.status::text AS status,
       'job_history_' || p.status::text AS parent,
       c.relname::text AS partition,
       p.detaching
FROM pgjobs.history_partitions AS p
JOIN pg_class AS c ON c.oid = p.partition
JOIN unnest(CAST(:statuses AS text[]), CAST(:retentions AS double precision[]))
     AS r (status, seconds) ON r.status = p.status::text
WHERE p.detaching
   OR p.to_at <= now() - make_interval(secs => r.seconds)
ORDER BY p.detaching DESC, p.to_at
