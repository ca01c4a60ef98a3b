-- Detach one history partition without blocking writers: CONCURRENTLY takes
-- a SHARE UPDATE EXCLUSIVE lock on the parent (completions writing to other
-- partitions, and readers, go on) and waits for the transactions that can
-- still see the partition. It cannot run inside a transaction block. The
-- identifiers are filled in with psycopg.sql.Identifier.
ALTER TABLE pgjobs.{parent} DETACH PARTITION pgjobs.{partition} CONCURRENTLY
