-- Helper for the prototypes: daily RANGE partitions of each finished status's
-- parent (<prefix>_succeeded, _failed, _cancelled), from now()-:back to now()+:ahead days.
CREATE OR REPLACE FUNCTION pgjobs.proto_make_partitions(prefix text, back integer, ahead integer)
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    s text;
    d date;
BEGIN
    FOREACH s IN ARRAY ARRAY['succeeded', 'failed', 'cancelled'] LOOP
        FOR d IN SELECT generate_series(current_date - back, current_date + ahead, '1 day')::date LOOP
            EXECUTE format(
                'CREATE TABLE IF NOT EXISTS pgjobs.%I PARTITION OF pgjobs.%I FOR VALUES FROM (%L) TO (%L)',
                prefix || '_' || s || '_' || to_char(d, 'YYYYMMDD'), prefix || '_' || s,
                d::timestamptz, (d + 1)::timestamptz);
        END LOOP;
    END LOOP;
END
$$;
