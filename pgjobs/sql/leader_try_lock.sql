-- Try to become the leader: the session-level advisory lock on the leader key
-- (pgjobs/_names.py). It is held until this session unlocks it or ends, so the
-- connection that takes it must be a real session, not a transaction-pooled one.
SELECT pg_try_advisory_lock(CAST(:key AS bigint)) AS answer
