-- A page of the jobs list when it is searched or sorted: args containing a
-- JSON object (jsonb @>), an error text (case-insensitive, in any recorded
-- error), sorted newest first, oldest first, or by priority (the order they
-- would run: priority, then id). The plain newest-first list of every filter
-- stays with admin_list_jobs.sql and its siblings.
--
-- Each request is planned with its values (never prepared), so the CASE of
-- an order not asked for folds to a constant and drops out of the ORDER BY:
-- newest and oldest walk the primary keys and stop at :limit matches. No
-- index serves a search in args or errors, so a rare match walks far; the
-- dashboard's statement timeout bounds it. Keyset paging: :cursor is the
-- last id of the previous page (for priority, that job's priority is looked
-- up, so a page after a job deleted meanwhile is empty: start again).
WITH page AS (
    SELECT *
    FROM pgjobs.job_states
    WHERE (CAST(:status AS pgjobs.job_status) IS NULL OR status = CAST(:status AS pgjobs.job_status))
      AND (CAST(:state AS text) IS NULL OR state = CAST(:state AS text))
      AND (CAST(:queue AS text) IS NULL OR queue = CAST(:queue AS text))
      AND (CAST(:task AS text) IS NULL OR task = CAST(:task AS text))
      AND (CAST(:args AS jsonb) IS NULL OR args @> CAST(:args AS jsonb))
      AND (CAST(:error AS text) IS NULL
           OR strpos(lower(CAST(errors AS text)), lower(CAST(:error AS text))) > 0)
      AND (CAST(:cursor AS bigint) IS NULL
           OR CASE CAST(:order AS text)
                  WHEN 'oldest' THEN id > CAST(:cursor AS bigint)
                  WHEN 'priority' THEN (priority, id) > (
                      (SELECT j.priority FROM pgjobs.jobs AS j WHERE j.id = CAST(:cursor AS bigint)),
                      CAST(:cursor AS bigint))
                  ELSE id < CAST(:cursor AS bigint)
              END)
    ORDER BY CASE WHEN CAST(:order AS text) = 'priority' THEN priority END,
             CASE WHEN CAST(:order AS text) = 'newest' THEN id END DESC,
             id
    LIMIT CAST(:limit AS integer)
)
SELECT *
FROM (
\include job_summaries
) AS s
ORDER BY CASE WHEN CAST(:order AS text) = 'priority' THEN s.priority END,
         CASE WHEN CAST(:order AS text) = 'newest' THEN s.id END DESC,
         s.id
