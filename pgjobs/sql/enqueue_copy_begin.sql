-- The first step of a bulk enqueue by COPY (pgjobs/_enqueue.py): ids for the
-- jobs, in order, and the database clock that their run_at and delay are
-- counted from (now() is the transaction's start, the same value the
-- INSERT of enqueue_many.sql would use). The rows then go in by COPY, which
-- cannot return ids or evaluate expressions.
--
-- It also wakes the waiting workers of every queue that gets a job due now,
-- before the rows are written: a notification is only delivered at commit,
-- and a rollback discards it. One element per queue: the earliest explicit
-- run_at of its jobs, and the least delay of the others (NULL when none).
SELECT
    ARRAY(
        SELECT nextval('pgjobs.jobs_id_seq') FROM generate_series(1, CAST(:count AS integer))
    ) AS ids,
    now() AS now,
    (
        SELECT count(pgjobs.wake(q))
        FROM unnest(
            CAST(:queues AS text[]),
            CAST(:earliest_run_ats AS timestamptz[]),
            CAST(:least_delays AS double precision[])
        ) AS u (q, earliest_run_at, least_delay)
        WHERE earliest_run_at <= now() OR least_delay <= 0
    ) AS woken
