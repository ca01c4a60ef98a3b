-- The active job holding a fingerprint, after an enqueue found it taken.
SELECT id FROM pgjobs.jobs_live
WHERE fingerprint = CAST(:fingerprint AS text) AND status IN ('queued', 'running')
