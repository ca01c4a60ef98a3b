-- Drop a detached history partition: a plain table now, which only readers
-- that started before the detach can still be reading.
DROP TABLE IF EXISTS pgjobs.{partition}
