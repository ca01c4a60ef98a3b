-- Does this session still hold the leader lock? An advisory lock on a bigint
-- key shows in pg_locks with the key's high and low 32 bits in classid and
-- objid, and objsubid 1.
SELECT EXISTS (
    SELECT 1
    FROM pg_locks
    WHERE locktype = 'advisory'
      AND pid = pg_backend_pid()
      AND granted
      AND objsubid = 1
      AND CAST(classid AS bigint) = CAST(:classid AS bigint)
      AND CAST(objid AS bigint) = CAST(:objid AS bigint)
) AS answer
