-- Make sure every finished status has history partitions from now to
-- :ahead seconds ahead, each :step seconds long (a step that divides a day);
-- returns how many were made. Partitions are made apart and attached, which
-- does not block completions (pgjobs.history_partition_for, migration 0009).
SELECT pgjobs.create_history_partitions(
    make_interval(secs => CAST(:step AS double precision)),
    make_interval(secs => CAST(:ahead AS double precision))
) AS made
