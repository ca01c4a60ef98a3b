-- Jobs with this fingerprint, newest first. The active one (if any) is found
-- through the unique index; finished ones by a keyset walk of the primary key.
WITH page AS (
    SELECT *
    FROM pgjobs.job_states
    WHERE fingerprint = CAST(:fingerprint AS text)
      AND (CAST(:before_id AS bigint) IS NULL OR id < CAST(:before_id AS bigint))
    ORDER BY id DESC
    LIMIT CAST(:limit AS integer)
)
\include job_summaries
