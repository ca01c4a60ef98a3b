-- What plain SQL costs in a design (run: psql -d storage_X -f plain_sql.sql).
\timing on
\echo == count by status (3 runs)
SELECT status, count(*) FROM pgjobs.jobs GROUP BY 1 ORDER BY 1;
SELECT status, count(*) FROM pgjobs.jobs GROUP BY 1 ORDER BY 1;
SELECT status, count(*) FROM pgjobs.jobs GROUP BY 1 ORDER BY 1;
\echo == queue_stats, failed_jobs
SELECT queue, available, succeeded FROM pgjobs.queue_stats;
SELECT count(*) FROM pgjobs.failed_jobs;
\echo == one job by id (history), plan
EXPLAIN (ANALYZE, COSTS OFF, SUMMARY ON) SELECT * FROM pgjobs.job_states WHERE id = 500000;
\echo == cancel then retry (dead-letter replay moves the row back to live)
SELECT max(id) AS jid FROM pgjobs.jobs WHERE status = 'queued' \gset
SELECT pgjobs.cancel(:jid);
SELECT tableoid::regclass, status FROM pgjobs.jobs_live WHERE id = :jid;
SELECT pgjobs.retry(:jid);
SELECT tableoid::regclass, status, attempts FROM pgjobs.jobs_live WHERE id = :jid;
\echo == retry of a job 2 days old in history: make it failed first
BEGIN;
UPDATE :hist SET status = 'failed' WHERE id = 500000;
SELECT pgjobs.retry(500000);
SELECT id, status FROM pgjobs.jobs WHERE id = 500000;
\echo == id uniqueness: a finished row carrying the id of a live job
INSERT INTO :hist (id, task, status, finished_at) VALUES (:jid, 'dup', 'succeeded', now());
SELECT id, status, finished_at FROM pgjobs.jobs WHERE id = :jid;
ROLLBACK;
\echo == plan of the count
EXPLAIN (COSTS OFF) SELECT status, count(*) FROM pgjobs.jobs GROUP BY 1;
