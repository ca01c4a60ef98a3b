-- Jobs newest first with every column, for the client API (app.list_jobs):
-- the filters and keyset paging of admin_list_jobs.sql.
SELECT *
FROM pgjobs.job_states
WHERE (CAST(:status AS pgjobs.job_status) IS NULL OR status = CAST(:status AS pgjobs.job_status))
  AND (CAST(:state AS text) IS NULL OR state = CAST(:state AS text))
  AND (CAST(:queue AS text) IS NULL OR queue = CAST(:queue AS text))
  AND (CAST(:task AS text) IS NULL OR task = CAST(:task AS text))
  AND (CAST(:before_id AS bigint) IS NULL OR id < CAST(:before_id AS bigint))
ORDER BY id DESC
LIMIT CAST(:limit AS integer)
