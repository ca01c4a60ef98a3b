-- The results of the jobs a running job depends on, for
-- current_job().parent_results(): the ids are its meta's depends_on. Through
-- the view, so live jobs (the primary key) and finished ones (the history's
-- id index, per partition) alike; a job that depends on others runs only once
-- all of them have succeeded, so they are in the history by then.
SELECT id, status::text AS status, result
FROM pgjobs.jobs
WHERE id = ANY (CAST(:ids AS bigint[]))
