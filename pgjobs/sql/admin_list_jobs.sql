-- Jobs newest first, one page at a time. Paging is keyset on the primary key
-- (pass the smallest id of the previous page as before_id), and nothing is
-- counted, so a page costs the same on a table of any size. Every filter is
-- optional: NULL matches everything. `state` filters on the derived states of
-- the job_states view (scheduled, retrying), `status` on the stored one.
WITH page AS (
    SELECT *
    FROM pgjobs.job_states
    WHERE (CAST(:status AS pgjobs.job_status) IS NULL OR status = CAST(:status AS pgjobs.job_status))
      AND (CAST(:state AS text) IS NULL OR state = CAST(:state AS text))
      AND (CAST(:queue AS text) IS NULL OR queue = CAST(:queue AS text))
      AND (CAST(:task AS text) IS NULL OR task = CAST(:task AS text))
      AND (CAST(:before_id AS bigint) IS NULL OR id < CAST(:before_id AS bigint))
    ORDER BY id DESC
    LIMIT CAST(:limit AS integer)
)
\include job_summaries
