-- Delete one job unless it is running (its handler would still complete it).
-- Returns the deleted id and, when nothing was deleted, whether the job exists.
WITH deleted AS (
    DELETE FROM pgjobs.jobs
    WHERE id = CAST(:id AS bigint) AND status <> 'running'
    RETURNING id
)
SELECT (SELECT id FROM deleted) AS deleted_id,
       (SELECT CAST(status AS text) FROM pgjobs.jobs WHERE id = CAST(:id AS bigint)) AS status
