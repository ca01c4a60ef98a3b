-- Enqueue many jobs in one round trip: parallel arrays, one element per job.
-- Each job's run_at is its explicit time, else the database clock plus its delay.
--
-- The same rows as the SQL function pgjobs.enqueue_many, written as one
-- statement: the function's array round trip (run_ats built in a subquery,
-- then unnested again) and its per-queue wake loop cost more than the inserts
-- themselves. Returns the ids created, in input order; a job whose
-- fingerprint is held by an active job is skipped. Waiting workers of each
-- queue that got a job due now are woken (pgjobs.wake notifies only when one
-- is waiting: README, How it works: Enqueue and the conditional NOTIFY).
WITH inserted AS (
    INSERT INTO pgjobs.jobs_live (task, args, queue, priority, run_at, fingerprint, max_attempts, meta,
                                  timeout, key)
    SELECT t, a, q, p, coalesce(r, now() + make_interval(secs => d)), f, m, coalesce(x, '{}'::jsonb),
           o, k
    FROM unnest(
        CAST(:tasks AS text[]),
        CAST(:args AS jsonb[]),
        CAST(:queues AS text[]),
        CAST(:priorities AS smallint[]),
        CAST(:run_ats AS timestamptz[]),
        CAST(:delays AS double precision[]),
        CAST(:fingerprints AS text[]),
        CAST(:max_attempts AS integer[]),
        CAST(:metas AS jsonb[]),
        CAST(:timeouts AS double precision[]),
        CAST(:keys AS text[])
    ) WITH ORDINALITY AS u (t, a, q, p, r, d, f, m, x, o, k, n)
    ORDER BY n
    ON CONFLICT (fingerprint) WHERE status IN ('queued', 'running') AND fingerprint IS NOT NULL
        DO NOTHING
    RETURNING id, queue, run_at
),
woken AS (
    SELECT count(pgjobs.wake(queue)) AS n
    FROM (SELECT DISTINCT queue FROM inserted WHERE run_at <= now()) AS due
)
-- Reading `woken` is what runs it: a CTE that nothing reads is skipped.
SELECT id FROM inserted, woken ORDER BY id
