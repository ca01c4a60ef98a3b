-- The queues that have queued jobs (due or not), for a worker that serves
-- every queue (--queues '*'), which asks every poll interval.
--
-- Cheap however large the backlog: one probe of the fetch index per queue
-- (queues_with_queued_jobs.sql).
\include queues_with_queued_jobs
SELECT queue FROM queues WHERE queue IS NOT NULL
