-- Delete one job unless it is running (its handler would still complete it).
-- Returns the deleted id and, when nothing was deleted, whether the job exists.
-- A deleted job's dependents (depends_on, migration 0014) are treated as for
-- a cancelled job: cancelled, recursively, except those that run anyway
-- (pgjobs.after(id, always=True), migration 0016), which it releases; a
-- deleted blocked job's own dependency rows go with it.
WITH deleted AS (
    DELETE FROM pgjobs.jobs
    WHERE id = CAST(:id AS bigint) AND status <> 'running'
    RETURNING id
), resolved AS (
    SELECT pgjobs.resolve_dependents(NULL, array_agg(id)) AS n
    FROM deleted
    HAVING count(*) > 0
)
SELECT (SELECT id FROM deleted) AS deleted_id,
       (SELECT CAST(status AS text) FROM pgjobs.jobs WHERE id = CAST(:id AS bigint)) AS status,
       coalesce((SELECT n FROM resolved), 0) AS dependents_cancelled
