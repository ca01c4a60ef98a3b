-- Design A: retry() and cancel() work unchanged (their UPDATE through
-- pgjobs.jobs moves the row between partitions). enqueue()/enqueue_many()
-- must INSERT into jobs_live: ON CONFLICT needs the active-fingerprint unique
-- index, which only the live partition can have.
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
