-- Jobs with this fingerprint, newest first. The active one (if any) is found
-- through the unique index; finished ones by a keyset walk of the primary key.
SELECT id,
       queue,
       task,
       state,
       CAST(status AS text) AS status,
       priority,
       attempts,
       max_attempts,
       run_at,
       created_at,
       CASE WHEN status = 'failed' OR state = 'retrying'
            THEN errors -> -1 ->> 'type' END AS last_error_type
FROM pgjobs.job_states
WHERE fingerprint = CAST(:fingerprint AS text)
  AND (CAST(:before_id AS bigint) IS NULL OR id < CAST(:before_id AS bigint))
ORDER BY id DESC
LIMIT CAST(:limit AS integer)
