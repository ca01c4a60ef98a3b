-- Write the circuit breakers declared in an App's code
-- (@app.task(circuit_breaker=...)): parallel arrays, one element per task
-- with a breaker, and :plain, the App's tasks without one, whose rows go
-- (a breaker removed from the code stops holding the task's jobs). A
-- declared breaker keeps its state (open, its count of failures); only its
-- threshold and cooldown change, and a row already so is left alone, so
-- updated_at says when it last changed. Tasks the App does not register
-- keep what they have. As with queue limits, the last worker started wins.
WITH gone AS (
    DELETE FROM pgjobs.task_breakers
    WHERE task = ANY (CAST(:plain AS text[]))
    RETURNING task
),
written AS (
    INSERT INTO pgjobs.task_breakers AS b (task, failures, cooldown)
    SELECT *
    FROM unnest(
        CAST(:tasks AS text[]),
        CAST(:failures AS integer[]),
        CAST(:cooldowns AS double precision[])
    )
    ON CONFLICT (task) DO UPDATE
        SET failures = excluded.failures,
            cooldown = excluded.cooldown,
            updated_at = now()
        WHERE (b.failures, b.cooldown) IS DISTINCT FROM (excluded.failures, excluded.cooldown)
    RETURNING b.task
)
SELECT task, true AS declared FROM written
UNION ALL
SELECT task, false FROM gone
