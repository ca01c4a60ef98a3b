-- The columns of a job summary (pgjobs._admin.JobSummary), newest first: the
-- one place they are spelled out. Not a statement of its own but the end of
-- every query that lists jobs, which writes `\include job_summaries` after a
-- WITH clause that ends in `page`: a page of rows with the columns of
-- pgjobs.jobs and the derived `state` of the pgjobs.job_states view.
--
-- `page` is not MATERIALIZED, so PostgreSQL plans it inside this query, as if
-- it were written here: its filters still reach the indexes, and only the
-- columns below are read.
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
       progress,
       started_at,
       CASE WHEN status = 'failed' OR state = 'retrying'
            THEN errors -> -1 ->> 'type' END AS last_error_type,
       -- The message cut to 300 characters: a list shows a line, the job page the rest.
       CASE WHEN status = 'failed' OR state = 'retrying'
            THEN left(errors -> -1 ->> 'message', 300) END AS last_error_message,
       CASE WHEN status = 'failed' OR state = 'retrying'
            THEN errors -> -1 ->> 'at' END AS last_error_at
FROM page
ORDER BY id DESC
