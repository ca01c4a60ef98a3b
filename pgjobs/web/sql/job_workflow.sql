-- The workflow around job :id (README, Workflows): its parents (the ids in
-- its meta's depends_on, looked up by id) and its dependents, each with its
-- task and status, and for a parent whether :id still waits for it.
--
-- A dependent is found three ways: one still blocked on :id has a row in
-- pgjobs.job_dependencies (its index on parent_id); one queued or running
-- is in pgjobs.jobs_live, which is scanned (it holds only the backlog);
-- one finished is in pgjobs.job_history, which may hold millions of rows
-- and has no index on meta, so only the :window jobs after :id by id are
-- read there. A dependent is always enqueued after its parents, so it has
-- a larger id; a chain's or a group's jobs are enqueued together, so their
-- ids are close. `searched_to` says how far the history was read.
WITH me AS (
    SELECT j.meta FROM pgjobs.jobs AS j WHERE j.id = CAST(:id AS bigint)
),
parent_ids AS (
    SELECT CAST(p AS bigint) AS id
    FROM me, jsonb_array_elements_text(
        CASE WHEN jsonb_typeof(me.meta -> 'depends_on') = 'array'
             THEN me.meta -> 'depends_on' ELSE '[]' END) AS p
    WHERE p ~ '^[0-9]{1,18}$'
),
later AS (
    SELECT h.id, h.meta
    FROM pgjobs.job_history AS h
    WHERE h.id > CAST(:id AS bigint)
    ORDER BY h.id
    LIMIT CAST(:window AS integer)
),
dependent_ids AS (
    SELECT d.job_id AS id FROM pgjobs.job_dependencies AS d WHERE d.parent_id = CAST(:id AS bigint)
    UNION
    SELECT l.id FROM pgjobs.jobs_live AS l
    WHERE l.id > CAST(:id AS bigint)
      AND l.meta -> 'depends_on' @> to_jsonb(CAST(:id AS bigint))
    UNION
    SELECT later.id FROM later WHERE later.meta -> 'depends_on' @> to_jsonb(CAST(:id AS bigint))
)
SELECT 'parent' AS relation, j.id, j.task, CAST(j.status AS text) AS status, j.queue,
       EXISTS (SELECT 1 FROM pgjobs.job_dependencies AS d
               WHERE d.parent_id = j.id AND d.job_id = CAST(:id AS bigint)) AS waited_for,
       NULL::bigint AS searched_to
FROM pgjobs.jobs AS j
WHERE j.id = ANY (ARRAY(SELECT id FROM parent_ids))
UNION ALL
SELECT 'dependent', j.id, j.task, CAST(j.status AS text), j.queue, false, NULL
FROM pgjobs.jobs AS j
WHERE j.id = ANY (ARRAY(SELECT id FROM dependent_ids))
UNION ALL
-- The last id of the history read, when the window was full (NULL: all of it).
SELECT 'searched', NULL, NULL, NULL, NULL, false,
       (SELECT max(id) FROM later HAVING count(*) >= CAST(:window AS integer))
ORDER BY relation DESC, id
