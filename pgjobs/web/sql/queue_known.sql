-- Whether :queue is a queue this database knows: it has settings, a live
-- worker serves it, or a job waits or runs in it. Each probe is an index
-- lookup or a scan of a small table (the queued jobs through the fetch
-- index, the running ones through the partial index of running jobs);
-- finished jobs are not looked at, so a queue known only by its history
-- counts as unknown here.
SELECT EXISTS (SELECT 1 FROM pgjobs.queues WHERE name = CAST(:queue AS text))
    OR EXISTS (SELECT 1 FROM pgjobs.workers WHERE CAST(:queue AS text) = ANY (queues))
    OR EXISTS (SELECT 1 FROM pgjobs.jobs_live
               WHERE status = 'queued'
                 AND hashtext(queue) = hashtext(CAST(:queue AS text))
                 AND queue = CAST(:queue AS text))
    OR EXISTS (SELECT 1 FROM pgjobs.jobs_live
               WHERE status IN ('running', 'blocked') AND queue = CAST(:queue AS text))
    AS known
