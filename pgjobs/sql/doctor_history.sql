-- The history of finished jobs: its partitions and their size, whether every
-- finished status has a partition for now() (else completions must make one,
-- which the leader normally does days ahead), and finished jobs that are
-- still in the live table: those an upgrade from 0008 left there (the
-- leader moves them) and those with no finished_at, which nothing can place
-- in time and which stay there until an operator sets one.
SELECT (SELECT count(*) FROM pgjobs.history_partitions) AS partitions,
       (SELECT count(*) FROM pgjobs.history_partitions WHERE detaching) AS detaching,
       (SELECT coalesce(sum(pg_total_relation_size(partition)), 0)
        FROM pgjobs.history_partitions) AS bytes,
       (SELECT count(DISTINCT status) FROM pgjobs.history_partitions
        WHERE from_at <= now() AND now() < to_at AND NOT detaching) AS statuses_covered,
       (SELECT count(*) FROM pgjobs.jobs_live
        WHERE status IN ('succeeded', 'failed', 'cancelled') AND finished_at IS NOT NULL) AS to_move,
       (SELECT count(*) FROM pgjobs.jobs_live
        WHERE status IN ('succeeded', 'failed', 'cancelled') AND finished_at IS NULL) AS unplaced
