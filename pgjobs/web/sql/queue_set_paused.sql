-- Pause or resume a queue. Workers skip paused queues when they claim; a
-- resumed queue wakes its idle workers at commit, so waiting jobs start at
-- once instead of at the next poll.
WITH changed AS (
    INSERT INTO pgjobs.queues AS q (name, paused, updated_at)
    VALUES (CAST(:queue AS text), CAST(:paused AS boolean), now())
    ON CONFLICT (name) DO UPDATE SET paused = excluded.paused, updated_at = excluded.updated_at
    RETURNING q.name, q.paused
)
SELECT name, paused, CASE WHEN NOT paused THEN pgjobs.wake(name) IS NOT NULL END AS woken
FROM changed
