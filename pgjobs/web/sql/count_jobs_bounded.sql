-- How many jobs match, counting no further than :cap rows (the dashboard shows
-- "cap+" beyond). Used only while the table is small; see _queries.py.
SELECT count(*) AS jobs
FROM (
    SELECT 1
    FROM pgjobs.job_states
    WHERE (CAST(:status AS pgjobs.job_status) IS NULL OR status = CAST(:status AS pgjobs.job_status))
      AND (CAST(:state AS text) IS NULL OR state = CAST(:state AS text))
      AND (CAST(:queue AS text) IS NULL OR queue = CAST(:queue AS text))
      AND (CAST(:task AS text) IS NULL OR task = CAST(:task AS text))
    LIMIT CAST(:cap AS integer)
) AS matching
