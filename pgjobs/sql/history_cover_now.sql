-- The completer's fallback when a batch found no history partition for
-- now(): make one per finished status (a day long, clipped by its
-- neighbours) and the next hour's. The leader's pruner normally keeps
-- partitions made days ahead (history_create.sql), so this runs only after
-- a long time without a leader.
SELECT pgjobs.create_history_partitions(interval '1 day', interval '1 hour') AS made
