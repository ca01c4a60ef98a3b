-- Design B: enqueue()/enqueue_many() insert into jobs_live; retry() moves a
-- finished job back from job_history to jobs_live (same id); cancel() moves a
-- queued job to job_history.
DO $rewrite$
DECLARE f text;
BEGIN
    FOREACH f IN ARRAY ARRAY[
        'pgjobs.enqueue(text, jsonb, text, integer, timestamptz, text, integer, jsonb)',
        'pgjobs.enqueue_many(text[], jsonb[], text[], integer[], timestamptz[], text[], integer[], jsonb[])'] LOOP
        EXECUTE replace(pg_get_functiondef(f::regprocedure), 'INSERT INTO pgjobs.jobs ', 'INSERT INTO pgjobs.jobs_live ');
    END LOOP;
END
$rewrite$;

CREATE OR REPLACE FUNCTION pgjobs.retry(job_id bigint) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    current pgjobs.job_status;
    job_queue text;
    job_fingerprint text;
    holder bigint;
    live boolean := true;
BEGIN
    SELECT status, queue, fingerprint INTO current, job_queue, job_fingerprint
    FROM pgjobs.jobs_live WHERE id = job_id FOR UPDATE;
    IF NOT FOUND THEN
        live := false;
        SELECT status, queue, fingerprint INTO current, job_queue, job_fingerprint
        FROM pgjobs.job_history WHERE id = job_id FOR UPDATE;
    END IF;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'pgjobs: no job with id %', job_id
            USING ERRCODE = 'no_data_found', HINT = 'List jobs with: SELECT id, status FROM pgjobs.jobs';
    END IF;
    IF current NOT IN ('failed', 'cancelled', 'queued') THEN
        RAISE EXCEPTION 'pgjobs: job % is %, only failed, cancelled or queued jobs can be retried', job_id, current
            USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;
    IF current <> 'queued' AND job_fingerprint IS NOT NULL THEN
        SELECT id INTO holder FROM pgjobs.jobs_live
        WHERE fingerprint = job_fingerprint AND status IN ('queued', 'running') AND id <> job_id;
        IF FOUND THEN
            RAISE EXCEPTION 'pgjobs: job % cannot be retried: active job % holds its fingerprint %',
                job_id, holder, job_fingerprint
                USING ERRCODE = 'object_not_in_prerequisite_state';
        END IF;
    END IF;
    IF live THEN
        UPDATE pgjobs.jobs_live
           SET status = 'queued', run_at = now(), attempts = 0, finished_at = NULL, worker_id = NULL
         WHERE id = job_id;
    ELSE
        WITH moved AS (
            DELETE FROM pgjobs.job_history WHERE id = job_id AND status = current RETURNING *
        )
        INSERT INTO pgjobs.jobs_live (id, queue, task, args, priority, status, run_at, attempts,
                                      max_attempts, fingerprint, worker_id, started_at, created_at,
                                      finished_at, errors, result, meta)
        SELECT id, queue, task, args, priority, 'queued', now(), 0, max_attempts, fingerprint,
               NULL, started_at, created_at, NULL, errors, result, meta
        FROM moved;
    END IF;
    PERFORM pgjobs.wake(job_queue);
END
$$;

CREATE OR REPLACE FUNCTION pgjobs.cancel(job_id bigint) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    current pgjobs.job_status;
BEGIN
    SELECT status INTO current FROM pgjobs.jobs_live WHERE id = job_id FOR UPDATE;
    IF NOT FOUND THEN
        SELECT status INTO current FROM pgjobs.job_history WHERE id = job_id;
    END IF;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'pgjobs: no job with id %', job_id
            USING ERRCODE = 'no_data_found', HINT = 'List jobs with: SELECT id, status FROM pgjobs.jobs';
    END IF;
    IF current <> 'queued' THEN
        RAISE EXCEPTION 'pgjobs: job % is %, only queued jobs can be cancelled', job_id, current
            USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;
    WITH moved AS (DELETE FROM pgjobs.jobs_live WHERE id = job_id RETURNING *)
    INSERT INTO pgjobs.job_history (id, queue, task, args, priority, status, run_at, attempts,
                                    max_attempts, fingerprint, worker_id, started_at, created_at,
                                    finished_at, errors, result, meta)
    SELECT id, queue, task, args, priority, 'cancelled', run_at, attempts, max_attempts, fingerprint,
           NULL, started_at, created_at, now(), errors, result, meta
    FROM moved;
END
$$;
